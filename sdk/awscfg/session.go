package awscfg

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Session holds a resolved AWS configuration and hands out clients. Clients
// are created once per region and shared. A Session is safe for concurrent
// use.
type Session struct {
	aws       aws.Config
	conf      Config
	endpoints Endpoints // effective endpoints, "" = public AWS

	mu      sync.Mutex
	ec2     map[string]*ec2.Client
	s3      map[string]*s3.Client
	kms     map[string]*kms.Client
	ssm     map[string]*ssm.Client
	sts     *sts.Client
	iam     *iam.Client
	account string
}

// New validates cfg and loads the AWS configuration: shared files, the
// credential chain and environment variables, as config.LoadDefaultConfig
// does, with the fields of cfg on top. It fails when no region can be
// resolved. New makes no network call; credentials are fetched when first
// needed.
func New(ctx context.Context, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if len(cfg.SharedConfigFiles) > 0 {
		opts = append(opts, config.WithSharedConfigFiles(cfg.SharedConfigFiles))
	}
	if len(cfg.SharedCredentialsFiles) > 0 {
		opts = append(opts, config.WithSharedCredentialsFiles(cfg.SharedCredentialsFiles))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	if cfg.RetryMode != "" {
		opts = append(opts, config.WithRetryMode(aws.RetryMode(cfg.RetryMode)))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.AppID != "" {
		opts = append(opts, config.WithAppID(cfg.AppID))
	}
	// Endpoints from AWS_ENDPOINT_URL* and the shared config are resolved by
	// the SDK when each client is built; only explicit ones are added there.
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws configuration (profile %q): %w", cfg.Profile, err)
	}
	if awsCfg.Region == "" {
		return nil, &FieldError{Field: "Region", Problem: "no region given and none found in AWS_REGION, AWS_DEFAULT_REGION or the profile"}
	}
	if !ValidRegion(awsCfg.Region) {
		return nil, &FieldError{Field: "Region", Problem: fmt.Sprintf("%q (from the environment or profile) is not a region name, like \"us-east-1\"", awsCfg.Region)}
	}

	s := &Session{
		conf: cfg,
		ec2:  make(map[string]*ec2.Client),
		s3:   make(map[string]*s3.Client),
		kms:  make(map[string]*kms.Client),
		ssm:  make(map[string]*ssm.Client),
	}
	if ar := cfg.AssumeRole; ar != nil {
		awsCfg.Credentials = assumeRoleCredentials(sts.NewFromConfig(awsCfg, s.stsOptions), *ar)
	}
	s.aws = awsCfg

	// Record the effective endpoints, as the SDK resolved them.
	s.endpoints = Endpoints{
		EC2: deref(s.EC2("").Options().BaseEndpoint),
		S3:  deref(s.S3("").Options().BaseEndpoint),
		STS: deref(s.STS().Options().BaseEndpoint),
	}
	return s, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Session) ec2Options(o *ec2.Options) {
	if ep := s.conf.Endpoints.EC2; ep != "" {
		o.BaseEndpoint = aws.String(ep)
	}
}

func (s *Session) stsOptions(o *sts.Options) {
	if ep := s.conf.Endpoints.STS; ep != "" {
		o.BaseEndpoint = aws.String(ep)
	}
}

func (s *Session) s3Options(o *s3.Options) {
	if ep := s.conf.Endpoints.S3; ep != "" {
		o.BaseEndpoint = aws.String(ep)
	}
	switch {
	case s.conf.S3UsePathStyle != nil:
		o.UsePathStyle = *s.conf.S3UsePathStyle
	case o.BaseEndpoint != nil:
		// A custom endpoint (emulator, proxy) rarely resolves
		// <bucket>.<host> names.
		o.UsePathStyle = true
	}
}

// Region returns the default region.
func (s *Session) Region() string { return s.aws.Region }

// AWS returns a copy of the resolved aws.Config (credentials, retries, HTTP
// client). Explicit endpoints are not part of it; use the client methods.
func (s *Session) AWS() aws.Config { return s.aws.Copy() }

// Endpoints returns the effective endpoint of each service, "" where the
// public AWS endpoint is used.
func (s *Session) Endpoints() Endpoints { return s.endpoints }

// CustomEndpoint reports whether any service uses a custom endpoint, as with
// an emulator.
func (s *Session) CustomEndpoint() bool { return s.endpoints != Endpoints{} }

func (s *Session) region(r string) string {
	if r == "" {
		return s.aws.Region
	}
	return r
}

// regional returns the client of region ("" = the default region) from
// clients, made with newClient the first time it is asked for.
func regional[C any](s *Session, clients map[string]C, region string, newClient func(region string) C) C {
	region = s.region(region)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := clients[region]
	if !ok {
		c = newClient(region)
		clients[region] = c
	}
	return c
}

// EC2 returns the EC2 client for region ("" = the default region).
func (s *Session) EC2(region string) *ec2.Client {
	return regional(s, s.ec2, region, func(r string) *ec2.Client {
		return ec2.NewFromConfig(s.aws, s.ec2Options, func(o *ec2.Options) { o.Region = r })
	})
}

// S3 returns the S3 client for region ("" = the default region).
func (s *Session) S3(region string) *s3.Client {
	return regional(s, s.s3, region, func(r string) *s3.Client {
		return s3.NewFromConfig(s.aws, s.s3Options, func(o *s3.Options) { o.Region = r })
	})
}

// KMS returns the KMS client for region ("" = the default region). Its
// endpoint is the SDK's: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL or the
// shared configuration, else the public one.
func (s *Session) KMS(region string) *kms.Client {
	return regional(s, s.kms, region, func(r string) *kms.Client {
		return kms.NewFromConfig(s.aws, func(o *kms.Options) { o.Region = r })
	})
}

// IAM returns the IAM client. IAM is a global service; requests are signed
// for the default region, which the SDK maps to IAM's signing region. Its
// endpoint is the SDK's: AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL or the
// shared configuration, else the public one.
func (s *Session) IAM() *iam.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iam == nil {
		s.iam = iam.NewFromConfig(s.aws)
	}
	return s.iam
}

// SSM returns the Systems Manager client for region ("" = the default
// region). Its endpoint is the SDK's: AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL or the shared configuration, else the public one.
func (s *Session) SSM(region string) *ssm.Client {
	return regional(s, s.ssm, region, func(r string) *ssm.Client {
		return ssm.NewFromConfig(s.aws, func(o *ssm.Options) { o.Region = r })
	})
}

// Profile returns the shared configuration profile named in the
// configuration (Config.Profile), "" when none was named.
func (s *Session) Profile() string { return s.conf.Profile }

// STS returns the STS client for the default region.
func (s *Session) STS() *sts.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sts == nil {
		s.sts = sts.NewFromConfig(s.aws, s.stsOptions)
	}
	return s.sts
}

// AccountID returns the account of the session's credentials, from
// sts:GetCallerIdentity. A successful answer is cached.
func (s *Session) AccountID(ctx context.Context) (string, error) {
	s.mu.Lock()
	account := s.account
	s.mu.Unlock()
	if account != "" {
		return account, nil
	}
	out, err := s.STS().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get caller identity in %s: %w", s.aws.Region, err)
	}
	if out.Account == nil || *out.Account == "" {
		return "", errors.New("get caller identity in " + s.aws.Region + ": no account in the answer")
	}
	s.mu.Lock()
	s.account = *out.Account
	s.mu.Unlock()
	return *out.Account, nil
}

// Assume returns a Session that acts with the credentials of the role
// ar.RoleARN, assumed with this Session's credentials (sts:AssumeRole
// through this Session's STS endpoint). It shares this Session's region,
// endpoints, retries and HTTP client; the role's credentials are fetched
// when first needed and renewed before they expire. ar is validated as
// Config.AssumeRole is; nothing is called before the first request.
func (s *Session) Assume(ar AssumeRole) (*Session, error) {
	conf := s.conf
	conf.AssumeRole = &ar
	if err := conf.Validate(); err != nil {
		return nil, fmt.Errorf("assume role: %w", err)
	}
	awsCfg := s.aws.Copy()
	awsCfg.Credentials = assumeRoleCredentials(s.STS(), ar)
	return &Session{
		aws:       awsCfg,
		conf:      conf,
		endpoints: s.endpoints,
		ec2:       make(map[string]*ec2.Client),
		s3:        make(map[string]*s3.Client),
		kms:       make(map[string]*kms.Client),
		ssm:       make(map[string]*ssm.Client),
	}, nil
}

// assumeRoleCredentials returns cached credentials of the role ar, assumed
// with the STS client base.
func assumeRoleCredentials(base *sts.Client, ar AssumeRole) aws.CredentialsProvider {
	return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(base, ar.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		if ar.ExternalID != "" {
			o.ExternalID = aws.String(ar.ExternalID)
		}
		if ar.SessionName != "" {
			o.RoleSessionName = ar.SessionName
		}
		if ar.Duration > 0 {
			o.Duration = ar.Duration
		}
	}))
}
