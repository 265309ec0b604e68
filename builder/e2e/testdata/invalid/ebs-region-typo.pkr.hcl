# want: region
# want: us-east-one
# want: us-east-1
source "ami-ebs" "bad" {
  region        = "us-east-one"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"

}

build {
  sources = ["source.ami-ebs.bad"]
}
