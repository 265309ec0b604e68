# want: ami_users[0]
# want: 12345
# want: 12 digits
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region     = "us-east-1"
    source_ami = "ami-0123456789abcdef0"
    regions    = ["eu-west-1"]
    ami_users  = ["12345"]
  }
}
