//go:build unix

package awscfg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// isolateEnv removes every AWS_* variable for the test and points the shared
// files at an empty directory, so the host's configuration cannot leak in.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k) // t.Setenv restores the old value on cleanup
		}
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestEndpointResolution(t *testing.T) {
	tr, fa := true, false
	tests := []struct {
		name          string
		env           map[string]string
		cfg           Config
		want          Endpoints
		wantPathStyle bool
	}{
		{name: "public AWS", want: Endpoints{}},
		{name: "global env", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
			want: Endpoints{EC2: "http://127.0.0.1:1", S3: "http://127.0.0.1:1", STS: "http://127.0.0.1:1"}, wantPathStyle: true},
		{name: "service env beats global env",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:2"},
			want: Endpoints{EC2: "http://127.0.0.1:2", S3: "http://127.0.0.1:1", STS: "http://127.0.0.1:1"}, wantPathStyle: true},
		{name: "s3 env only", env: map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:3"},
			want: Endpoints{S3: "http://127.0.0.1:3"}, wantPathStyle: true},
		{name: "explicit beats env",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:2"},
			cfg:  Config{Endpoints: Endpoints{EC2: "http://127.0.0.1:9", STS: "http://127.0.0.1:8"}},
			want: Endpoints{EC2: "http://127.0.0.1:9", S3: "http://127.0.0.1:1", STS: "http://127.0.0.1:8"}, wantPathStyle: true},
		{name: "explicit only ec2", cfg: Config{Endpoints: Endpoints{EC2: "http://127.0.0.1:9"}},
			want: Endpoints{EC2: "http://127.0.0.1:9"}, wantPathStyle: false},
		{name: "path style forced off", cfg: Config{Endpoints: Endpoints{S3: "http://127.0.0.1:9"}, S3UsePathStyle: &fa},
			want: Endpoints{S3: "http://127.0.0.1:9"}, wantPathStyle: false},
		{name: "path style forced on", cfg: Config{S3UsePathStyle: &tr}, want: Endpoints{}, wantPathStyle: true},
		{name: "ignore configured endpoints", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
			want: Endpoints{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tc.cfg.Region = "us-east-1"
			s, err := New(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Endpoints(); got != tc.want {
				t.Errorf("Endpoints() = %+v, want %+v", got, tc.want)
			}
			if got, want := s.CustomEndpoint(), tc.want != (Endpoints{}); got != want {
				t.Errorf("CustomEndpoint() = %v, want %v", got, want)
			}
			if got := s.S3("").Options().UsePathStyle; got != tc.wantPathStyle {
				t.Errorf("S3 UsePathStyle = %v, want %v", got, tc.wantPathStyle)
			}
			// The endpoint must be the same for other regions' clients.
			if got := aws.ToString(s.EC2("eu-west-1").Options().BaseEndpoint); got != tc.want.EC2 {
				t.Errorf("eu-west-1 EC2 endpoint = %q, want %q", got, tc.want.EC2)
			}
		})
	}
}

func TestNewRegionAndCredentials(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		files      map[string]string // name in temp dir -> content
		cfg        func(dir string) Config
		wantRegion string
		wantKey    string
		wantErr    string
	}{
		{name: "no region", cfg: func(string) Config { return Config{} }, wantErr: "Region: no region given"},
		{name: "region from env", env: map[string]string{"AWS_REGION": "ap-south-1"}, cfg: func(string) Config { return Config{} }, wantRegion: "ap-south-1"},
		{name: "bad region from env", env: map[string]string{"AWS_REGION": "Mars"}, cfg: func(string) Config { return Config{} }, wantErr: `"Mars"`},
		{name: "explicit region beats env", env: map[string]string{"AWS_REGION": "ap-south-1"}, cfg: func(string) Config { return Config{Region: "eu-north-1"} }, wantRegion: "eu-north-1"},
		{name: "invalid config", cfg: func(string) Config { return Config{Region: "us-east-1", RetryMode: "x"} }, wantErr: "RetryMode"},
		{name: "static keys", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"},
			cfg: func(string) Config {
				return Config{Region: "us-east-1", AccessKey: "AKIASTATIC", SecretKey: "s", SessionToken: "t"}
			}, wantRegion: "us-east-1", wantKey: "AKIASTATIC"},
		{name: "env keys by default chain", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"},
			cfg: func(string) Config { return Config{Region: "us-east-1"} }, wantRegion: "us-east-1", wantKey: "AKIAENVKEY"},
		{name: "profile from shared files",
			files: map[string]string{
				"cfg":   "[profile build]\nregion = eu-central-1\n",
				"creds": "[build]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p\n",
			},
			cfg: func(dir string) Config {
				return Config{Profile: "build",
					SharedConfigFiles:      []string{filepath.Join(dir, "cfg")},
					SharedCredentialsFiles: []string{filepath.Join(dir, "creds")}}
			}, wantRegion: "eu-central-1", wantKey: "AKIAPROFILE"},
		{name: "missing profile", cfg: func(string) Config { return Config{Region: "us-east-1", Profile: "nope"} }, wantErr: `profile "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := New(context.Background(), tc.cfg(dir))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Region() != tc.wantRegion {
				t.Errorf("Region() = %q, want %q", s.Region(), tc.wantRegion)
			}
			if tc.wantKey != "" {
				creds, err := s.AWS().Credentials.Retrieve(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if creds.AccessKeyID != tc.wantKey {
					t.Errorf("access key = %q, want %q", creds.AccessKeyID, tc.wantKey)
				}
			}
		})
	}
}

func TestRetryAndClientCache(t *testing.T) {
	isolateEnv(t)
	hc := &http.Client{Timeout: time.Second}
	s, err := New(context.Background(), Config{Region: "us-west-2", MaxAttempts: 7, RetryMode: "adaptive", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	o := s.EC2("").Options()
	if o.RetryMaxAttempts != 7 || o.RetryMode != aws.RetryModeAdaptive {
		t.Errorf("EC2 retry = %d/%q, want 7/adaptive", o.RetryMaxAttempts, o.RetryMode)
	}
	if got := o.Retryer.MaxAttempts(); got != 7 {
		t.Errorf("retryer max attempts = %d, want 7", got)
	}
	if o.HTTPClient != hc {
		t.Error("EC2 client does not use the configured HTTP client")
	}
	if s.EC2("") != s.EC2("us-west-2") {
		t.Error("EC2(\"\") and EC2(default region) are different clients")
	}
	if got := s.EC2("eu-west-1").Options().Region; got != "eu-west-1" {
		t.Errorf("EC2(eu-west-1) region = %q", got)
	}
	if got := s.S3("ap-northeast-1").Options().Region; got != "ap-northeast-1" {
		t.Errorf("S3(ap-northeast-1) region = %q", got)
	}
	// Concurrent use hands out one client per region.
	var wg sync.WaitGroup
	clients := make([]any, 20)
	for i := range clients {
		wg.Go(func() { clients[i] = s.EC2("sa-east-1") })
	}
	wg.Wait()
	for _, c := range clients {
		if c != clients[0] {
			t.Fatal("concurrent EC2(sa-east-1) calls returned different clients")
		}
	}
}

// fakeSTS answers AssumeRole and GetCallerIdentity and records each request.
type fakeSTS struct {
	mu    sync.Mutex
	calls []stsCall
}

type stsCall struct {
	action, accessKey string
	form              map[string]string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := stsCall{action: r.Form.Get("Action"), form: map[string]string{}}
	for k := range r.Form {
		c.form[k] = r.Form.Get(k)
	}
	// Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/sts/aws4_request, ...
	if _, after, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		c.accessKey, _, _ = strings.Cut(after, "/")
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	switch c.action {
	case "AssumeRole":
		fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>rolesecret</SecretAccessKey><SessionToken>roletoken</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::210987654321:assumed-role/build/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`)
	case "GetCallerIdentity":
		account := "123456789012"
		if c.accessKey == "ASIAROLE" {
			account = "210987654321"
		}
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>
<Arn>arn:aws:iam::%[1]s:user/x</Arn><UserId>AIDA</UserId><Account>%[1]s</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, account)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unknown</Message></Error></ErrorResponse>`)
	}
}

func (f *fakeSTS) Calls() []stsCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stsCall(nil), f.calls...)
}

func TestAssumeRoleAndAccountID(t *testing.T) {
	tests := []struct {
		name        string
		role        *AssumeRole
		wantAccount string
		wantCalls   []string // action:accessKey
		wantForm    map[string]string
	}{
		{name: "base credentials", wantAccount: "123456789012", wantCalls: []string{"GetCallerIdentity:AKIABASE"}},
		{name: "assumed role",
			role:        &AssumeRole{RoleARN: "arn:aws:iam::210987654321:role/build", ExternalID: "ext-42", SessionName: "packer", Duration: 30 * time.Minute},
			wantAccount: "210987654321",
			wantCalls:   []string{"AssumeRole:AKIABASE", "GetCallerIdentity:ASIAROLE"},
			wantForm:    map[string]string{"RoleArn": "arn:aws:iam::210987654321:role/build", "ExternalId": "ext-42", "RoleSessionName": "packer", "DurationSeconds": "1800"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			fake := &fakeSTS{}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			s, err := New(context.Background(), Config{
				Region: "us-east-1", AccessKey: "AKIABASE", SecretKey: "base",
				AssumeRole: tc.role, Endpoints: Endpoints{STS: srv.URL},
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(fake.Calls()); n != 0 {
				t.Fatalf("New made %d STS calls, want none", n)
			}
			for range 2 { // the second call is served from the cache
				got, err := s.AccountID(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.wantAccount {
					t.Errorf("AccountID() = %q, want %q", got, tc.wantAccount)
				}
			}
			var calls []string
			for _, c := range fake.Calls() {
				calls = append(calls, c.action+":"+c.accessKey)
			}
			if fmt.Sprint(calls) != fmt.Sprint(tc.wantCalls) {
				t.Errorf("STS calls = %v, want %v", calls, tc.wantCalls)
			}
			for k, v := range tc.wantForm {
				if got := fake.Calls()[0].form[k]; got != v {
					t.Errorf("AssumeRole %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestAccountIDError(t *testing.T) {
	isolateEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>`)
	}))
	t.Cleanup(srv.Close)
	s, err := New(context.Background(), Config{Region: "us-east-1", AccessKey: "AKIABASE", SecretKey: testSecret, Endpoints: Endpoints{STS: srv.URL}, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AccountID(context.Background())
	if err == nil {
		t.Fatal("AccountID() succeeded, want AccessDenied")
	}
	var fe interface{ ErrorCode() string }
	if !errors.As(err, &fe) || fe.ErrorCode() != "AccessDenied" {
		t.Errorf("error %v does not carry the AccessDenied API code", err)
	}
	if !strings.Contains(err.Error(), "get caller identity in us-east-1") {
		t.Errorf("error %q does not say what failed where", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error leaks the secret key: %v", err)
	}
}

func TestAppIDInUserAgent(t *testing.T) {
	tests := []struct {
		name, appID string
		want        string // in the User-Agent; "" = no app/ token
	}{
		{name: "set", appID: "packer-plugin-ami.ebs", want: "app/packer-plugin-ami.ebs"},
		{name: "unset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			var mu sync.Mutex
			var agents []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				agents = append(agents, r.Header.Get("User-Agent"))
				mu.Unlock()
				w.Header().Set("Content-Type", "text/xml")
				fmt.Fprint(w, `<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><regionInfo/></DescribeRegionsResponse>`)
			}))
			t.Cleanup(srv.Close)
			s, err := New(context.Background(), Config{
				Region: "us-east-1", AccessKey: "AKIABASE", SecretKey: testSecret,
				Endpoints: Endpoints{EC2: srv.URL}, AppID: tc.appID,
			})
			if err != nil {
				t.Fatal(err)
			}
			// Every client of the session, whatever its region, sends it.
			for _, region := range []string{"us-east-1", "eu-west-1"} {
				if _, err := s.EC2(region).DescribeRegions(context.Background(), nil); err != nil {
					t.Fatalf("DescribeRegions in %s: %v", region, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(agents) != 2 {
				t.Fatalf("server saw %d calls, want 2", len(agents))
			}
			for _, ua := range agents {
				has := strings.Contains(ua, " app/")
				switch {
				case tc.want != "" && !strings.Contains(ua, " "+tc.want):
					t.Errorf("User-Agent %q lacks %q", ua, tc.want)
				case tc.want == "" && has:
					t.Errorf("User-Agent %q has an app id, want none", ua)
				}
			}
		})
	}
}

func TestIAMClient(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "public AWS", want: ""},
		{name: "global env", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, want: "http://127.0.0.1:1"},
		{name: "service env beats global env",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_IAM": "http://127.0.0.1:4"},
			want: "http://127.0.0.1:4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := New(context.Background(), Config{Region: "eu-west-1", AccessKey: "AKID", SecretKey: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			c := s.IAM()
			if got := aws.ToString(c.Options().BaseEndpoint); got != tc.want {
				t.Errorf("IAM endpoint = %q, want %q", got, tc.want)
			}
			if got := c.Options().Region; got != "eu-west-1" {
				t.Errorf("IAM region = %q, want the session's eu-west-1", got)
			}
			if s.IAM() != c {
				t.Error("IAM() returned a different client the second time")
			}
		})
	}
}

func TestSSMClient(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantEndpoint string
	}{
		{name: "public AWS"},
		{name: "global env", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, wantEndpoint: "http://127.0.0.1:1"},
		{name: "service env beats global env",
			env:          map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:4"},
			wantEndpoint: "http://127.0.0.1:4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := New(context.Background(), Config{Region: "us-east-1", Profile: ""})
			if err != nil {
				t.Fatal(err)
			}
			for _, region := range []string{"", "eu-west-1"} {
				c := s.SSM(region)
				want := region
				if want == "" {
					want = "us-east-1"
				}
				if got := c.Options().Region; got != want {
					t.Errorf("SSM(%q) region = %q, want %q", region, got, want)
				}
				if got := aws.ToString(c.Options().BaseEndpoint); got != tc.wantEndpoint {
					t.Errorf("SSM(%q) endpoint = %q, want %q", region, got, tc.wantEndpoint)
				}
				if s.SSM(region) != c {
					t.Errorf("SSM(%q) made a second client", region)
				}
			}
		})
	}
}
