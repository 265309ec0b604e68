# want: ami_nmae
# want: is not expected here
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  ami_nmae      = "typo"
}

build {
  sources = ["source.ami-ebs.bad"]
}
