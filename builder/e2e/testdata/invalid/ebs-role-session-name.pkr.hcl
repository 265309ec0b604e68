# want: assume_role.session_name
# want: 2-64
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  assume_role {
    role_arn     = "arn:aws:iam::123456789012:role/packer"
    session_name = "a"
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
