# attempt timeout that is not a duration
# summary: Invalid Duration
# at: attempt_timeout = "a minute"

provider "immutable" {
  attempt_timeout = "a minute"
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
