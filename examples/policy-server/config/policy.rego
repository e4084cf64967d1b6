# Example Rego policy (needs the `rego` cargo feature). Enable it in policy-server.yaml:
#   rego:
#     policies: [policy.rego]
#     rule: data.weir.grants
package weir

import rego.v1

grants := {"functions": functions, "files": files}

# Everyone in "readers" may read.
functions contains "read_data" if "readers" in input.groups

# Writers may write, but only through PUT or POST.
functions contains "write_data" if {
	"writers" in input.groups
	input.method in {"PUT", "POST"}
}

# Each user owns a home folder.
files contains sprintf("/home/%s", [input.subject])
