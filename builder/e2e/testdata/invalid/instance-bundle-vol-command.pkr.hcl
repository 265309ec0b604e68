# want: bundle_vol_command
# want: ec2-bundle-vol
# want: bundle_command_prefix
# want: x509_upload_path
source "ami-instance" "bad" {
  region             = "us-east-1"
  instance_type      = "m3.medium"
  local_emulator     = true
  source_ami         = "ami-0123456789abcdef0"
  ssh_username       = "ec2-user"
  ami_name           = "bad-input-{{timestamp}}"
  s3_bucket          = "my-bundles"
  bundle_vol_command = "sudo -i -n ec2-bundle-vol -k {{.KeyPath}} -u {{.AccountId}} -c {{.CertPath}} -r {{.Architecture}} -e {{.PrivatePath}}/* -d {{.Destination}} -p {{.Prefix}} --batch --no-filter"
  x509_upload_path   = "/tmp"
}

build {
  sources = ["source.ami-instance.bad"]
}
