# want: vpc_id
# want: vpc?
# want: 8 or 17 hex digits
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  vpc_id        = "vpc?"
}

build {
  sources = ["source.ami-ebs.bad"]
}
