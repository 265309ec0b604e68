# want: user_data
# want: user_data_file
source "ami-ebs" "bad" {
  region         = "us-east-1"
  instance_type  = "t3.micro"
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "ec2-user"
  ami_name       = "bad-input-{{timestamp}}"
  user_data      = "#!/bin/sh"
  user_data_file = "/etc/hostname"
}

build {
  sources = ["source.ami-ebs.bad"]
}
