# want: source_ami
# want: ami-xyz
# want: 8 or 17 hex digits
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-xyz"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"

}

build {
  sources = ["source.ami-ebs.bad"]
}
