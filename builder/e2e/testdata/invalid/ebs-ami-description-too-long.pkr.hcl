# want: ami_description
# want: 255
source "ami-ebs" "bad" {
  region          = "us-east-1"
  instance_type   = "t3.micro"
  source_ami      = "ami-0123456789abcdef0"
  ssh_username    = "ec2-user"
  ami_name        = "bad-input-{{timestamp}}"
  ami_description = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
}

build {
  sources = ["source.ami-ebs.bad"]
}
