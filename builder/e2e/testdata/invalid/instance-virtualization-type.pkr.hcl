# want: ami_virtualization_type
# want: hvm2
# want: paravirtual
source "ami-instance" "bad" {
  region                  = "us-east-1"
  instance_type           = "m3.medium"
  local_emulator          = true
  source_ami              = "ami-0123456789abcdef0"
  ssh_username            = "root"
  ami_name                = "bad-input-{{timestamp}}"
  s3_bucket               = "my-bundles"
  ami_virtualization_type = "hvm2"
}

build {
  sources = ["source.ami-instance.bad"]
}
