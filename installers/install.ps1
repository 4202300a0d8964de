# bgmask for GIMP 3 and Krita on Windows: finds a Python 3.10+ and runs the installer.
# Usage: powershell -ExecutionPolicy Bypass -File installers\install.ps1 [--uninstall] [--dry-run]
#
# The Microsoft Store's Python is never used: Windows redirects its writes to AppData into its
# own package folder, where GIMP and Krita do not look. Its files and its "python" aliases
# live under WindowsApps; check_python.py (bgmask_installer/winpython.py) checks each
# candidate's real location too.
$installer = Join-Path $PSScriptRoot "install.py"
$check = Join-Path $PSScriptRoot "check_python.py"
$candidates = @()
if (Get-Command py -ErrorAction SilentlyContinue) {
    # Every Python the launcher knows, by path, newest first; then its own choice.
    foreach ($line in (& py -0p 2>$null)) {
        if ($line -match '([A-Za-z]:\\.*\.exe)\s*$') { $candidates += , @($Matches[1]) }
    }
    $candidates += , @("py", "-3")
}
foreach ($name in @("python", "python3")) {
    foreach ($command in @(Get-Command $name -All -ErrorAction SilentlyContinue)) {
        $candidates += , @($command.Source)
    }
}
foreach ($pattern in @("$env:LOCALAPPDATA\Programs\Python\Python3*\python.exe",
                       "$env:ProgramFiles\Python3*\python.exe")) {
    foreach ($found in @(Get-ChildItem $pattern -ErrorAction SilentlyContinue | Sort-Object -Descending)) {
        $candidates += , @($found.FullName)
    }
}
$sawStore = $false
foreach ($candidate in $candidates) {
    $exe = $candidate[0]
    if ($exe -like "*\WindowsApps\*") {
        # A Store alias: running it may even open the Store instead of a Python.
        $sawStore = $true
        continue
    }
    $pre = @($candidate | Select-Object -Skip 1)
    $global:LASTEXITCODE = 1  # stays so when the candidate cannot be started at all
    try { & $exe @pre $check 2>$null } catch { continue }
    if ($LASTEXITCODE -eq 0) {
        & $exe @pre $installer @args
        exit $LASTEXITCODE
    }
    if ($LASTEXITCODE -eq 3) { $sawStore = $true }
}
if ($sawStore) {
    Write-Error ("bgmask installer: only the Microsoft Store's Python was found, and it cannot " +
        "be used: Windows redirects its writes to AppData into its own folder, where GIMP and " +
        "Krita do not look. Install Python 3.10 or newer from python.org (or run: winget " +
        "install Python.Python.3.13), then run this again.")
} else {
    Write-Error ("bgmask installer: Python 3.10 or newer is needed; install it from python.org " +
        "(or run: winget install Python.Python.3.13)")
}
exit 1
