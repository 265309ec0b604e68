# want: launch_block_device_mappings[0].device_name
# want: required
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  launch_block_device_mappings {
    volume_size = 20
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
