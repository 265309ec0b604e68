# want: root_device_name
# want: sda1
# want: /dev/sda1
source "ami-instance" "bad" {
  region           = "us-east-1"
  instance_type    = "m3.medium"
  local_emulator   = true
  source_ami       = "ami-0123456789abcdef0"
  ssh_username     = "root"
  ami_name         = "bad-input-{{timestamp}}"
  s3_bucket        = "my-bundles"
  root_device_name = "sda1"
}

build {
  sources = ["source.ami-instance.bad"]
}
