# iam endpoint with a path but no host
# summary: Invalid Endpoint URL
# at: iam = "http:///iam"

provider "immutable" {
  endpoints {
    iam = "http:///iam"
  }
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
