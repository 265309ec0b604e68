# want: aws_polling.max_attempts
# want: -1
# want: number of attempts
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  aws_polling {
    max_attempts = -1
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
