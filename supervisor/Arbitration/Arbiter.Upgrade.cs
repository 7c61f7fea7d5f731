using Supervisor.Control;

namespace Supervisor.Arbitration;

/// <summary>
/// SIGUSR2, Gunicorn's binary upgrade, in one step (<see cref="BinaryUpgrade"/>): a new supervisor from
/// the binary on disk gets the listening sockets and serves once its workers are ready; then this one
/// hands over and drains. Until then nothing here changes: a new binary that fails leaves this one serving.
/// </summary>
internal sealed partial class Arbiter
{
    private void OnUpgradeSignal(string name)
    {
        if (Environment.ProcessId == 1)
        {
            // PID 1 of a container: its exit would end the container, the new supervisor with it.
            _log.Warning("Ignoring signal: {Signal}: the supervisor is PID 1 (a container's entrypoint), whose exit would end the container; roll out a new image instead", name);
            return;
        }
        if (_upgrade.NextPid is { } booting)
        {
            _log.Warning("Ignoring signal: {Signal}: the new supervisor (pid {Pid}) is still booting", name, booting);
            return;
        }
        if (!_booted)
        {
            _log.Warning("Ignoring signal: {Signal}: the first workers are still booting; upgrade once they serve", name);
            return;
        }
        _log.Information("Handling signal: {Signal}", name);
        try
        {
            var handover = _hooks.PrepareUpgrade();
            var file = _upgrade.Start(handover, BinaryUpgrade.TakeOverWithin(Options.BootTimeout));
            _log.Information("Upgrading: started {File} as supervisor {Pid} with {Sockets} listening sockets; it serves once its workers are ready, and this one serves until then",
                file, _upgrade.NextPid, handover.Binds.Count + (handover.AdminBind is null ? 0 : 1));
        }
        catch (Exception exception) when (exception is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _log.Error("Upgrade failed: {Reason}. This supervisor serves on", exception.Message);
        }
    }

    private void OnUpgradeExited(UpgradeExited exited)
    {
        var pid = exited.Process.Id;
        if (_upgrade.Exited(exited.Process))
        {
            _log.Error("Upgrade failed: the new supervisor (pid {Pid}) exited with code {ExitCode} before it served (its lines above say why). This supervisor serves on", pid, exited.ExitCode);
        }
    }

    private void OnTakeoverRequested(TakeoverRequested request)
    {
        if (!_upgrade.TookOver(request.Pid))
        {
            _log.Warning("Refused a takeover by pid {Pid}: it is not the supervisor this one started for an upgrade", request.Pid);
            request.Reply.TrySetResult(new TakeoverReply(false, $"supervisor {Environment.ProcessId} started no upgrade as pid {request.Pid}"));
            return;
        }
        _serviceManager.HandOver(request.Pid);
        request.Reply.TrySetResult(new TakeoverReply(true, $"supervisor {Environment.ProcessId} hands over and drains"));
        _stop = StopReason.Upgraded(request.Pid);
    }

    // The new side: the old supervisor made this one systemd's main pid (or is gone), and it serves.
    private void OnServingAfterUpgrade(ServingAfterUpgrade serving)
    {
        if (serving.HandedOver)
        {
            _log.Information("Upgrade complete: serving; supervisor {Pid} drains and exits", serving.FromPid);
        }
        _serviceManager.TookOver(PoolStatus());
    }

    // Stopping before the new supervisor served: it must not serve on alone, unknown to the service manager.
    private void StopBootingUpgrade()
    {
        if (_upgrade.NextPid is { } pid)
        {
            _log.Warning("Stopping the new supervisor (pid {Pid}) too: this one stops before it served", pid);
            Native.Libc.Kill(pid, Native.Libc.SIGTERM);
        }
    }

    private void KillLateUpgrade()
    {
        if (_upgrade.KillIfLate() is { } pid)
        {
            _log.Error("Upgrade failed: the new supervisor (pid {Pid}) did not serve within {Seconds} s; killing it. This supervisor serves on",
                pid, BinaryUpgrade.TakeOverWithin(Options.BootTimeout).TotalSeconds);
        }
    }
}
