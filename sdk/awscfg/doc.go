// Package awscfg turns a plain Config (region, credentials, retries,
// endpoints) into a Session that hands out EC2, S3, STS, IAM, KMS and SSM
// clients.
//
// Credentials are taken, in order of precedence, from static keys
// (AccessKey, SecretKey, SessionToken), from a named Profile in the shared
// configuration files, or from the SDK's default chain (environment, shared
// files, SSO, web identity, container and instance roles). When AssumeRole is
// set, those credentials are used to assume the role, and the role's
// credentials are used for every client.
//
// Endpoints for emulators such as moto are chosen per service: an explicit
// Endpoints field wins, then AWS_ENDPOINT_URL_EC2 / _S3 / _STS (or the
// services section of the shared config), then AWS_ENDPOINT_URL. The last two
// are resolved by the AWS SDK itself; this package only adds the explicit
// value on top. When the S3 endpoint is custom, S3 uses path-style addressing
// unless S3UsePathStyle says otherwise. Endpoints has fields for EC2, S3 and
// STS only: the IAM, KMS and SSM clients use the endpoint the AWS SDK
// resolves (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL or the shared
// config, else the public one).
//
// Config.Validate checks a Config without touching the network, and a Config
// prints with its secrets redacted (String, GoString, fmt.Formatter for every
// verb, and slog's LogValue), so it is safe to log, also as an exported field
// of another struct. A Config in an unexported field of a printed struct is
// the exception: fmt shows such fields without calling their methods.
//
// CheckRegion asks EC2 whether a region exists and is enabled for the
// account; a region that is not yields a *RegionError, usable with
// errors.As.
package awscfg
