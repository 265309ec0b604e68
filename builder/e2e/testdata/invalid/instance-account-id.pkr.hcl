# want: account_id
# want: 12345
# want: 12 digits
source "ami-instance" "bad" {
  region         = "us-east-1"
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "root"
  ami_name       = "bad-input-{{timestamp}}"
  s3_bucket      = "my-bundles"
  account_id     = "12345"
}

build {
  sources = ["source.ami-instance.bad"]
}
