# want: availability_zone
# want: moon-1a
# want: expected like
source "ami-ebs" "bad" {
  region            = "us-east-1"
  instance_type     = "t3.micro"
  source_ami        = "ami-0123456789abcdef0"
  ssh_username      = "ec2-user"
  ami_name          = "bad-input-{{timestamp}}"
  availability_zone = "moon-1a"
}

build {
  sources = ["source.ami-ebs.bad"]
}
