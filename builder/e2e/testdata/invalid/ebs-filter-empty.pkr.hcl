# want: source_ami_filter
# want: filters, owners
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  source_ami_filter {
    most_recent = true
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
