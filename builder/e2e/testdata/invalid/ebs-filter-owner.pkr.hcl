# want: source_ami_filter.owners
# want: 12345
# want: 12-digit
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  source_ami_filter {
    owners = ["12345"]
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
