# want: source_ami
# want: image-123
# want: 8 or 17 hex
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region     = "us-east-1"
    source_ami = "image-123"
    regions    = ["eu-west-1"]

  }
}
