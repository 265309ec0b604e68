//go:build unix

package instance

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// noEnv clears the environment variables Prepare reads.
func noEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	// No shared files: Prepare reads endpoint_url from the profile.
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
}

// writePEM writes a generated certificate and key to dir and returns their
// paths.
func writePEM(t *testing.T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	cert, key := cachedCert(t, name)
	certPath = filepath.Join(dir, name+"-cert.pem")
	keyPath = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

var (
	certCacheMu sync.Mutex
	certCache   = map[string]*certs{}
)

// cachedCert returns a certificate and key generated once per name and
// process: RSA key generation is slow, and the tests only need distinct
// keys per name.
func cachedCert(t *testing.T, name string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	certCacheMu.Lock()
	defer certCacheMu.Unlock()
	if c, ok := certCache[name]; ok {
		return c.UserCert, c.UserKey
	}
	cert, key, err := generateCert(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certCache[name] = &certs{UserCert: cert, UserKey: key}
	return cert, key
}

// validRaw returns a valid configuration with an EC2 certificate file.
func validRaw(t *testing.T) map[string]any {
	t.Helper()
	ec2Cert, _ := writePEM(t, t.TempDir(), "ec2")
	return map[string]any{
		"region":        "us-east-1",
		"source_ami":    "ami-0123456789abcdef0",
		"instance_type": "m3.medium",
		"ami_name":      "test {{timestamp}}",
		"ssh_username":  "admin",
		"s3_bucket":     "my-bundles",
		"ec2_cert_path": ec2Cert,
	}
}

func TestPrepareDefaults(t *testing.T) {
	noEnv(t)
	var c Config
	warnings, err := c.Prepare(validRaw(t))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "instance_type") {
			t.Errorf("m3.medium warned about: %s", w)
		}
	}
	checks := []struct{ field, got, want string }{
		{"bundle_source", c.BundleSource, BundleSourceCopy},
		{"bundle_scratch_dir", c.BundleScratchDir, "/mnt"},
		{"bundle_name", c.BundleName, "image"},
		{"architecture", c.Architecture, "x86_64"},
		{"virtualization_type", c.VirtualizationType, "hvm"},
		{"root_device_name", c.RootDeviceName, "/dev/sda1"},
		{"bundle_command_prefix", c.BundleCommandPrefix, "sudo -n"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.field, ck.got, ck.want)
		}
	}
	if c.S3UploadConcurrency != 4 {
		t.Errorf("s3_upload_concurrency = %d, want 4", c.S3UploadConcurrency)
	}
	if !strings.HasPrefix(c.S3Prefix, "test-") || strings.ContainsAny(c.S3Prefix, " {}") {
		t.Errorf("default s3_prefix = %q, want test-<timestamp>-<unix time>", c.S3Prefix)
	}
	if !strings.Contains(strings.Join(warnings, "\n"), "x509_cert_path is not set") {
		t.Errorf("no warning about the discarded generated key: %q", warnings)
	}
}

func TestPrepareRootNeedsNoSudo(t *testing.T) {
	noEnv(t)
	raw := validRaw(t)
	raw["ssh_username"] = "root"
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if c.BundleCommandPrefix != "" {
		t.Errorf("bundle_command_prefix for root = %q, want none", c.BundleCommandPrefix)
	}
}

// bundle_prefix has the meaning of HashiCorp's amazon-instance: the
// prefix of the bundle's files, our bundle_name, with template functions.
func TestPrepareBundlePrefixIsBundleName(t *testing.T) {
	noEnv(t)
	raw := validRaw(t)
	raw["bundle_prefix"] = "image-{{timestamp}}"
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^image-[0-9]+$`).MatchString(c.BundleName) {
		t.Errorf("bundle_name from bundle_prefix = %q, want image-<timestamp>", c.BundleName)
	}
	if strings.Contains(c.S3Prefix, "image-") {
		t.Errorf("bundle_prefix went into s3_prefix %q", c.S3Prefix)
	}
}

func TestPrepareUserCertificate(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	cert, key := writePEM(t, dir, "user")
	otherCert, _ := writePEM(t, dir, "other")

	raw := validRaw(t)
	raw["x509_cert_path"], raw["x509_key_path"] = cert, key
	var c Config
	warnings, err := c.Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.userKey == nil || len(c.userCertPEM) == 0 {
		t.Error("user certificate and key not loaded")
	}
	if strings.Contains(strings.Join(warnings, "\n"), "x509_cert_path is not set") {
		t.Errorf("warned about a generated key although one was given: %q", warnings)
	}

	raw = validRaw(t)
	raw["x509_cert_path"], raw["x509_key_path"] = otherCert, key
	var c2 Config
	_, err = c2.Prepare(raw)
	if err == nil || !strings.Contains(err.Error(), "does not belong to the certificate") {
		t.Errorf("mismatched key and certificate: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error quotes the key: %v", err)
	}
}

// vpcEndpoint is a custom EC2 endpoint of real AWS, as users set for VPC
// or FIPS endpoints.
const vpcEndpoint = "https://vpce-123.ec2.us-east-1.vpce.amazonaws.com"

// TestPrepareLocalEmulator checks that only local_emulator, with a
// loopback EC2 endpoint, lets the builder do without ec2_cert_path: a
// custom endpoint alone keeps the requirement, and local_emulator with an
// endpoint that is not a loopback address is refused.
func TestPrepareLocalEmulator(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		opts     map[string]any
		wantErr  []string // "" = valid, with the stand-in warning
		noStandI bool
		wantWarn string
	}{
		{name: "VPC endpoint", opts: map[string]any{"custom_endpoint_ec2": vpcEndpoint}, noStandI: true, wantWarn: "read from Amazon's EC2 AMI tools on the build instance"},
		{name: "VPC endpoint from the environment", env: map[string]string{"AWS_ENDPOINT_URL_EC2": vpcEndpoint}, noStandI: true, wantWarn: "read from Amazon's EC2 AMI tools on the build instance"},
		{name: "loopback endpoint without the opt-in", opts: map[string]any{"custom_endpoint_ec2": "http://127.0.0.1:5000"}, noStandI: true, wantWarn: "read from Amazon's EC2 AMI tools on the build instance"},
		{name: "loopback AWS_ENDPOINT_URL without the opt-in", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, noStandI: true, wantWarn: "read from Amazon's EC2 AMI tools on the build instance"},
		{name: "opt-in with a VPC endpoint", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": vpcEndpoint}, wantErr: []string{"local_emulator:", vpcEndpoint, "loopback"}},
		{name: "opt-in with a VPC endpoint from the environment", opts: map[string]any{"local_emulator": true}, env: map[string]string{"AWS_ENDPOINT_URL": vpcEndpoint}, wantErr: []string{"local_emulator:", "loopback"}},
		{name: "opt-in with a private address", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": "http://10.0.0.5:5000"}, wantErr: []string{"local_emulator:", "loopback"}},
		{name: "opt-in without an endpoint", opts: map[string]any{"local_emulator": true}, wantErr: []string{"local_emulator:", "custom_endpoint_ec2"}},
		{name: "opt-in with 127.0.0.1", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": "http://127.0.0.1:5000"}},
		{name: "opt-in with localhost", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": "http://localhost:5000"}},
		{name: "opt-in with ::1", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": "http://[::1]:5000"}},
		{name: "opt-in with AWS_ENDPOINT_URL", opts: map[string]any{"local_emulator": true}, env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}},
		{name: "opt-in with an EC2 certificate", opts: map[string]any{"local_emulator": true, "custom_endpoint_ec2": "http://127.0.0.1:5000", "ec2_cert_path": nil}, noStandI: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			raw := validRaw(t)
			if _, keep := tc.opts["ec2_cert_path"]; !keep {
				delete(raw, "ec2_cert_path")
			}
			for k, v := range tc.opts {
				if v != nil {
					raw[k] = v
				}
			}
			var c Config
			warnings, err := c.Prepare(raw)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatal("Prepare accepted the configuration")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if got := strings.Contains(strings.Join(warnings, "\n"), "stand-in EC2 certificate"); got == tc.noStandI {
				t.Errorf("stand-in warning = %t, want %t: %q", got, !tc.noStandI, warnings)
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.wantWarn) {
				t.Errorf("warnings %q lack %q", warnings, tc.wantWarn)
			}
		})
	}
}

func TestPrepareEndpointFromProfile(t *testing.T) {
	noEnv(t)
	tests := []struct {
		name    string
		profile string
		wantErr bool
	}{
		{"endpoint_url in the profile", "endpoint_url = http://127.0.0.1:5000\n", false},
		{"no endpoint in the profile", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeProfile(t, tc.profile)
			raw := validRaw(t)
			delete(raw, "ec2_cert_path")
			raw["profile"] = "emu"
			raw["local_emulator"] = true
			var c Config
			warnings, err := c.Prepare(raw)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "local_emulator:") {
					t.Fatalf("Prepare error = %v, want local_emulator refused without an endpoint", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare with endpoint_url in the profile and no ec2_cert_path: %v", err)
			}
			if !strings.Contains(strings.Join(warnings, "\n"), "stand-in EC2 certificate") {
				t.Errorf("no stand-in warning: %q", warnings)
			}
		})
	}
}

func TestPrepareInstanceTypeWarning(t *testing.T) {
	noEnv(t)
	tests := []struct {
		instanceType string
		warn         bool
	}{
		{"m3.medium", false},
		{"c3.large", false},
		{"x1.16xlarge", false},
		{"t3.micro", true},
		{"m5.large", true},
	}
	for _, tc := range tests {
		t.Run(tc.instanceType, func(t *testing.T) {
			raw := validRaw(t)
			raw["instance_type"] = tc.instanceType
			var c Config
			warnings, err := c.Prepare(raw)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(warnings, "\n")
			if got := strings.Contains(joined, "instance_type"); got != tc.warn {
				t.Errorf("warned = %v, want %v: %q", got, tc.warn, joined)
			}
			if tc.warn && !strings.Contains(joined, "C1, C3, D2, I2, M1, M2, M3, R3, X1") {
				t.Errorf("warning does not list the families: %q", joined)
			}
		})
	}
}

func TestPrepareErrors(t *testing.T) {
	noEnv(t)
	dir := t.TempDir()
	userCert, userKey := writePEM(t, dir, "user")
	genDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(genDir, generatedKeyFile), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  map[string]any
		del  []string
		want []string // each must appear in the error
	}{
		{"missing bucket", nil, []string{"s3_bucket"}, []string{"s3_bucket: required"}},
		{"bad bucket", map[string]any{"s3_bucket": "My_Bucket"}, nil, []string{"s3_bucket", "My_Bucket"}},
		{"bad account", map[string]any{"account_id": "12345"}, nil, []string{"account_id", "12 digits"}},
		{"name and HashiCorp's name", map[string]any{"bundle_name": "a", "bundle_prefix": "b"}, nil, []string{"bundle_name, bundle_prefix"}},
		{"bad bundle_prefix", map[string]any{"bundle_prefix": "a/b"}, nil, []string{"bundle_prefix", "a/b"}},
		{"prefix with a build variable", map[string]any{"s3_prefix": "bundles/{{ .SourceAMI }}"}, nil, []string{"s3_prefix: build variables such as {{ .SourceAMI }} are not available"}},
		{"ami name with a build variable", map[string]any{"ami_name": "web {{ .SourceAMIName }}"}, nil, []string{"ami_name: build variables such as {{ .SourceAMIName }} are not available in ami_name"}},
		{"prefix with dot-dot", map[string]any{"s3_prefix": "a/../b"}, nil, []string{"s3_prefix", ".."}},
		{"bad bundle name", map[string]any{"bundle_name": "a/b"}, nil, []string{"bundle_name", "a/b"}},
		{"cert without key", map[string]any{"x509_cert_path": userCert}, nil, []string{"x509_cert_path, x509_key_path", "both"}},
		{"missing cert file", map[string]any{"x509_cert_path": filepath.Join(dir, "nope.pem"), "x509_key_path": userKey}, nil, []string{"x509_cert_path", "nope.pem"}},
		{"generated dir with given cert", map[string]any{"x509_cert_path": userCert, "x509_key_path": userKey, "x509_generated_dir": genDir}, nil, []string{"x509_generated_dir", "not valid together"}},
		{"generated dir not fresh", map[string]any{"x509_generated_dir": genDir}, nil, []string{"x509_generated_dir", generatedKeyFile, "already exists"}},
		{"ec2 cert unreadable", map[string]any{"ec2_cert_path": filepath.Join(dir, "missing.pem")}, nil, []string{"ec2_cert_path", "missing.pem"}},
		{"relative bundle source", map[string]any{"bundle_source": "root.img"}, nil, []string{"bundle_source", "absolute path", "\"copy\""}},
		{"relative scratch dir", map[string]any{"bundle_scratch_dir": "tmp"}, nil, []string{"bundle_scratch_dir", "absolute"}},
		{"root as scratch dir", map[string]any{"bundle_scratch_dir": "/"}, nil, []string{"bundle_scratch_dir", "root"}},
		{"size too big", map[string]any{"bundle_size_mb": 20000}, nil, []string{"bundle_size_mb", "1 to 10240"}},
		{"size with device", map[string]any{"bundle_source": "/dev/xvdb", "bundle_size_mb": 100}, nil, []string{"bundle_size_mb", "only valid with bundle_source = \"copy\""}},
		{"exclude with file", map[string]any{"bundle_source": "/mnt/root.img", "bundle_exclude": []string{"/tmp"}}, nil, []string{"bundle_exclude", "only valid"}},
		{"relative exclude", map[string]any{"bundle_exclude": []string{"var/tmp"}}, nil, []string{"bundle_exclude[0]", "absolute"}},
		{"exclude everything", map[string]any{"bundle_exclude": []string{"/"}}, nil, []string{"bundle_exclude[0]", "everything"}},
		{"exclude everything by pattern", map[string]any{"bundle_exclude": []string{"/tmp", "/*"}}, nil, []string{"bundle_exclude[1]", "everything"}},
		{"exclude star", map[string]any{"bundle_exclude": []string{"*"}}, nil, []string{"bundle_exclude[0]", "everything"}},
		{"relative pattern", map[string]any{"bundle_exclude": []string{".cache/*"}}, nil, []string{"bundle_exclude[0]", "absolute", `"*/.cache"`}},
		{"keep unknown", map[string]any{"bundle_keep": []string{"ssh_host_keys", "history"}}, nil, []string{`bundle_keep[1]: "history" is not a rule`, "shell_history", "private_keys"}},
		{"keep with file", map[string]any{"bundle_source": "/mnt/root.img", "bundle_keep": []string{"machine_id"}}, nil, []string{"bundle_keep", "only valid"}},
		{"concurrency", map[string]any{"s3_upload_concurrency": 100}, nil, []string{"s3_upload_concurrency", "1 to 32"}},
		{"architecture", map[string]any{"architecture": "amd64"}, nil, []string{"architecture", "amd64", "i386", "x86_64", "arm64"}},
		{"virtualization", map[string]any{"ami_virtualization_type": "pv"}, nil, []string{"ami_virtualization_type", "hvm", "paravirtual"}},
		{"paravirtual without kernel", map[string]any{"ami_virtualization_type": "paravirtual"}, nil, []string{"kernel_id: required"}},
		{"paravirtual arm64", map[string]any{"ami_virtualization_type": "paravirtual", "architecture": "arm64", "kernel_id": "aki-12345678"}, nil, []string{"ami_virtualization_type", "arm64"}},
		{"root device", map[string]any{"root_device_name": "sda1"}, nil, []string{"root_device_name", "/dev/sda1"}},
		{"boot mode", map[string]any{"boot_mode": "bios"}, nil, []string{"boot_mode", "legacy-bios", "uefi"}},
		{"tpm without uefi", map[string]any{"tpm_support": "v2.0"}, nil, []string{"tpm_support", "uefi"}},
		{"tpm value", map[string]any{"tpm_support": "2", "boot_mode": "uefi"}, nil, []string{"tpm_support", "v2.0"}},
		{"kernel id", map[string]any{"kernel_id": "ami-12345678"}, nil, []string{"kernel_id", "aki-"}},
		{"ramdisk id", map[string]any{"ramdisk_id": "x"}, nil, []string{"ramdisk_id", "ari-"}},
		{"product code", map[string]any{"ami_product_codes": []string{"no spaces"}}, nil, []string{"ami_product_codes[0]"}},
		{"bundle_vol_command", map[string]any{"bundle_vol_command": "sudo -n ec2-bundle-vol -k {{.KeyPath}} -d {{.Destination}}"}, nil, []string{"bundle_vol_command: not used", "bundle_source"}},
		{"bundle_upload_command", map[string]any{"bundle_upload_command": "ec2-upload-bundle"}, nil, []string{"bundle_upload_command: not used", "s3_upload_concurrency"}},
		{"bundle_destination", map[string]any{"bundle_destination": "/mnt"}, nil, []string{"bundle_destination: not used", "bundle_scratch_dir"}},
		{"x509_upload_path", map[string]any{"x509_upload_path": "/tmp"}, nil, []string{"x509_upload_path: not used"}},
		{"snapshot tags", map[string]any{"snapshot_tags": map[string]string{"a": "b"}}, nil, []string{"snapshot_tags", "no snapshots"}},
		{"root device mapped", map[string]any{"ami_block_device_mappings": []map[string]any{{"device_name": "/dev/sda1", "volume_size": 8}}}, nil, []string{"ami_block_device_mappings[0].device_name", "root device"}},
		{"winrm", map[string]any{"communicator": "winrm", "winrm_username": "Administrator"}, nil, []string{"communicator", "Windows instance-store AMIs cannot be created"}},
		{"windows filter", map[string]any{"source_ami_filter": map[string]any{"filters": map[string]string{"platform": "windows"}, "owners": []string{"amazon"}}}, []string{"source_ami"}, []string{"source_ami_filter.filters", "Windows"}},
		{"no communicator", map[string]any{"communicator": "none"}, nil, []string{"communicator", "none"}},
		{"pty", map[string]any{"ssh_pty": true}, nil, []string{"ssh_pty"}},
		{"shared option still checked", map[string]any{"region": "Europe"}, nil, []string{"region", "Europe"}},
		{"encrypt_boot", map[string]any{"encrypt_boot": true}, nil, []string{"encrypt_boot", "no EBS snapshots", "ami-ebs"}},
		{"kms key", map[string]any{"encrypt_boot": true, "kms_key_id": "alias/images"}, nil, []string{"kms_key_id, region_kms_key_ids", "no EBS snapshots"}},
		{"snapshot sharing", map[string]any{"snapshot_users": []string{"123456789012"}}, nil, []string{"snapshot_users, snapshot_groups", "ami_users is enough"}},
		{"skip_save_build_region", map[string]any{"skip_save_build_region": true, "ami_regions": []string{"eu-west-1"}}, nil, []string{"skip_save_build_region", "s3_bucket"}},
		{"copy region", map[string]any{"ami_regions": []string{"eu_west_1"}}, nil, []string{"ami_regions[0]", "eu_west_1"}},
		{"disable_stop_instance", map[string]any{"disable_stop_instance": true}, nil, []string{"disable_stop_instance", "streamed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw(t)
			for _, k := range tc.del {
				delete(raw, k)
			}
			for k, v := range tc.set {
				raw[k] = v
			}
			var c Config
			_, err := c.Prepare(raw)
			if err == nil {
				t.Fatal("Prepare succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDefaultPrefix(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct{ name, want string }{
		{"web 2024-01-01", "web-2024-01-01-1700000000"},
		{"app (v2) [x]/y", "app--v2---x--y-1700000000"},
		{"()", "bundle-1700000000"},
	}
	for _, tc := range tests {
		if got := DefaultPrefix(tc.name, at); got != tc.want {
			t.Errorf("DefaultPrefix(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestConfigSpecCoversOptions checks that the generated HCL2 spec knows
// this builder's options, so the committed generated file is not stale.
func TestConfigSpecCoversOptions(t *testing.T) {
	var b Builder
	spec := b.ConfigSpec()
	for _, name := range []string{"account_id", "s3_bucket", "s3_prefix", "bundle_prefix", "bundle_name", "x509_cert_path",
		"x509_key_path", "x509_generated_dir", "ec2_cert_path", "bundle_source", "bundle_scratch_dir", "bundle_size_mb",
		"bundle_exclude", "bundle_keep", "bundle_command_prefix", "s3_upload_concurrency", "architecture", "ami_virtualization_type",
		"root_device_name", "boot_mode", "tpm_support", "sriov_support", "kernel_id", "ramdisk_id", "ami_product_codes",
		"ena_support", "imds_support", "ami_block_device_mappings", "aws_polling", "source_ami_filter"} {
		if _, ok := spec[name]; !ok {
			t.Errorf("HCL2 spec lacks %q; run make generate", name)
		}
	}
	src := `
s3_bucket = "b"
bundle_exclude = ["/a", "*/.cache"]
bundle_keep = ["ssh_host_keys"]
sriov_support = true
`
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "x.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, diags := hcldec.Decode(f.Body, spec, nil); diags.HasErrors() {
		t.Errorf("decode with the generated spec: %v", diags)
	}
}
