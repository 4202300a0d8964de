# bgmask for GIMP 3 and Krita on Windows: finds a Python 3.10+ and runs the installer.
# Usage: powershell -ExecutionPolicy Bypass -File installers\install.ps1 [--uninstall] [--dry-run]
$installer = Join-Path $PSScriptRoot "install.py"
foreach ($candidate in @(@("py", "-3"), @("python"), @("python3"))) {
    $exe = $candidate[0]
    if (Get-Command $exe -ErrorAction SilentlyContinue) {
        $pre = @($candidate | Select-Object -Skip 1)
        & $exe @pre -c "import sys; sys.exit(sys.version_info < (3, 10))"
        if ($LASTEXITCODE -eq 0) {
            & $exe @pre $installer @args
            exit $LASTEXITCODE
        }
    }
}
Write-Error "bgmask installer: Python 3.10 or newer is needed; install it from python.org"
exit 1
