# want: deprecate_at, deprecate_after
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region          = "us-east-1"
    source_ami      = "ami-0123456789abcdef0"
    regions         = ["eu-west-1"]
    deprecate_at    = "2099-01-01T00:00:00Z"
    deprecate_after = "90d"
  }
}
