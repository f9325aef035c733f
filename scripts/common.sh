# Sourced by the scripts in this folder: one environment for all of them.
# - tools installed by pip (cargo-lambda, sam, cfn-lint) and cargo (fakecloud) are on PATH,
#   whatever Python or shims the machine has;
# - no AWS SDK or CLI probes the instance-metadata address, a region is always set;
# - SAM CLI sends no telemetry (nothing leaves this machine).
py_scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
py_user_scripts=$(python3 -c 'import site, os; print(os.path.join(site.USER_BASE, "bin"))' 2>/dev/null || true)
export PATH="$HOME/.local/bin:${CARGO_HOME:-$HOME/.cargo}/bin:${py_scripts:+$py_scripts:}${py_user_scripts:+$py_user_scripts:}$PATH"
export AWS_EC2_METADATA_DISABLED=true
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export SAM_CLI_TELEMETRY=0
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
