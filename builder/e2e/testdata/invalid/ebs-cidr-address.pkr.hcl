# want: temporary_security_group_source_cidrs[0]
# want: 300.1.1.1/32
# want: expected like
source "ami-ebs" "bad" {
  region                                = "us-east-1"
  instance_type                         = "t3.micro"
  source_ami                            = "ami-0123456789abcdef0"
  ssh_username                          = "ec2-user"
  ami_name                              = "bad-input-{{timestamp}}"
  temporary_security_group_source_cidrs = ["300.1.1.1/32"]
}

build {
  sources = ["source.ami-ebs.bad"]
}
