# By app name (when one Terraform object runs it) or by the id of its serving
# Spot Fleet request. The plan after the import shows `owner` changing: the apply
# makes this state the app's owner, and a state that managed it before lets go.
import {
  to = immutable_app.web
  id = "web"
}
