# want: temporary_security_group_source_cidrs[0]
# want: 10.0.0.0/99
# want: expected like
source "ami-ebs" "bad" {
  region                                = "us-east-1"
  instance_type                         = "t3.micro"
  source_ami                            = "ami-0123456789abcdef0"
  ssh_username                          = "ec2-user"
  ami_name                              = "bad-input-{{timestamp}}"
  temporary_security_group_source_cidrs = ["10.0.0.0/99"]
}

build {
  sources = ["source.ami-ebs.bad"]
}
