# want: launch_block_device_mappings[0].volume_size
# want: -5
# want: 1 to 65536
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  launch_block_device_mappings {
    device_name = "/dev/xvdb"
    volume_size = -5
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
