# want: region
# want: eu-west
# want: us-east-1
source "ami-instance" "bad" {
  region         = "eu-west"
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "root"
  ami_name       = "bad-input-{{timestamp}}"
  s3_bucket      = "my-bundles"

}

build {
  sources = ["source.ami-instance.bad"]
}
