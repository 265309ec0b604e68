# want: iam_instance_profile
# want: instance profile name nor an instance profile ARN
source "ami-ebs" "bad" {
  region               = "us-east-1"
  instance_type        = "t3.micro"
  source_ami           = "ami-0123456789abcdef0"
  ssh_username         = "ec2-user"
  ami_name             = "bad-input-{{timestamp}}"
  iam_instance_profile = "arn:aws:iam::123:instance-profile/x"
}

build {
  sources = ["source.ami-ebs.bad"]
}
