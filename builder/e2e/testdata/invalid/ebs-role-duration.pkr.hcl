# want: assume_role.duration
# want: 15m to 12h
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  assume_role {
    role_arn = "arn:aws:iam::123456789012:role/packer"
    duration = "5m"
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
