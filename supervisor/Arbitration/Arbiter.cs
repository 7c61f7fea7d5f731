using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Serilog;
using Serilog.Events;
using Supervisor.Configuration;
using Supervisor.Native;
using Supervisor.Proxy;
using Supervisor.WorkerHost;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>
/// Owns the worker pool. One loop reads one event at a time (worker messages, exits, signals, ticks),
/// so all worker state is changed by this loop alone, as in Gunicorn's arbiter.
/// </summary>
internal sealed class Arbiter
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(250);

    private readonly SupervisorOptions _options;
    private readonly WorkerLauncher _launcher;
    private readonly WorkerDestinations _destinations;
    private readonly RunDirectory _runDirectory;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Channel<ArbiterEvent> _events;
    private readonly WorkerSlot[] _slots;
    private readonly List<WorkerProcess> _workers = [];
    private readonly int _generation = 1;
    private int _serial;
    private bool _booted;
    private StopReason? _stop;

    public Arbiter(SupervisorOptions options, WorkerLauncher launcher, WorkerDestinations destinations, RunDirectory runDirectory, Channel<ArbiterEvent> events, ILogger log, TimeProvider time)
    {
        _options = options;
        _launcher = launcher;
        _destinations = destinations;
        _runDirectory = runDirectory;
        _events = events;
        _log = log;
        _time = time;
        _slots = [.. Enumerable.Range(0, options.Workers).Select(index => new WorkerSlot(index))];
    }

    /// <summary>The worker processes still running, for the shutdown that follows <see cref="RunAsync"/>.</summary>
    public IReadOnlyList<WorkerProcess> Workers => _workers;

    /// <summary>Starts the pool and keeps it healthy until a signal or a boot failure ends the run.</summary>
    public async Task<StopReason> RunAsync()
    {
        using var ticker = _time.CreateTimer(_ => _events.Writer.TryWrite(new Tick()), null, TickInterval, TickInterval);
        foreach (var slot in _slots)
        {
            slot.RespawnAt = _time.GetUtcNow();
        }
        StartDueWorkers();
        while (_stop is null && await _events.Reader.WaitToReadAsync())
        {
            while (_stop is null && _events.Reader.TryRead(out var arbiterEvent))
            {
                Handle(arbiterEvent);
            }
        }
        return _stop ?? StopReason.Quick("end of events");
    }

    private void Handle(ArbiterEvent arbiterEvent)
    {
        switch (arbiterEvent)
        {
            case WorkerReported report:
                OnWorkerReported(report);
                break;
            case WorkerDisconnected disconnected:
                OnWorkerDisconnected(disconnected.WorkerKey);
                break;
            case WorkerExited exited:
                OnWorkerExited(exited.Worker, exited.ExitCode);
                break;
            case SignalReceived signal:
                OnSignal(signal.Signal);
                break;
            case Tick:
                KillWorkersPastBootTimeout();
                ProbeWorkersWithoutHook();
                StartDueWorkers();
                break;
        }
    }

    private void OnWorkerReported(WorkerReported report)
    {
        if (Find(report.WorkerKey) is not { } worker)
        {
            return;
        }
        worker.LastHeartbeat = _time.GetUtcNow();
        switch (report.Message)
        {
            case WorkerProtocol.Ready:
                MarkReady(worker);
                break;
            case WorkerProtocol.Stopping when worker.State == WorkerState.Ready && !worker.StopRequested:
                _log.Warning("Worker {Slot} (pid: {Pid}) is stopping on its own; out of rotation", worker.Identity.Slot, worker.Pid);
                TakeOutOfRotation(worker, WorkerState.Stopping);
                break;
        }
    }

    private void OnWorkerDisconnected(string workerKey)
    {
        if (Find(workerKey) is not { } worker || worker.StopRequested || worker.HasExited)
        {
            return;
        }
        // The worker-host's connection only closes when the process is going away (or the hook broke):
        // stop routing to it now rather than when the exit is reported.
        _log.Warning("Worker {Slot} (pid: {Pid}) closed its control connection; out of rotation", worker.Identity.Slot, worker.Pid);
        TakeOutOfRotation(worker, WorkerState.Stopping);
        worker.Signal(Libc.SIGTERM);
    }

    private void OnWorkerExited(WorkerProcess worker, int exitCode)
    {
        if (!_workers.Remove(worker))
        {
            return;
        }
        var wasInRotation = worker.State == WorkerState.Ready;
        worker.State = WorkerState.Exited;
        if (wasInRotation)
        {
            PublishReadyWorkers();
        }
        worker.Dispose();

        if (worker.StopRequested)
        {
            _log.Information("Worker exiting (pid: {Pid})", worker.Pid);
            return;
        }
        // .NET reports a death by signal N as exit code 128 + N.
        if (exitCode > 128 && exitCode < 160)
        {
            _log.Error("Worker (pid:{Pid}) was killed by signal {Signal} (worker {Slot}, generation {Generation})", worker.Pid, exitCode - 128, worker.Identity.Slot, worker.Identity.Generation);
        }
        else
        {
            _log.Error("Worker (pid:{Pid}) exited with code {ExitCode} (worker {Slot}, generation {Generation})", worker.Pid, exitCode, worker.Identity.Slot, worker.Identity.Generation);
        }
        if (!_booted && worker.ReadyAt is null)
        {
            _stop = StopReason.BootFailure(DescribeBootFailure(worker, $"exited with code {exitCode} before it was ready"));
            return;
        }
        ScheduleRespawn(_slots[worker.Identity.Slot], worker);
    }

    private void OnSignal(PosixSignal signal) => _stop = signal switch
    {
        PosixSignal.SIGTERM => StopReason.Graceful("term"),
        PosixSignal.SIGINT => StopReason.Quick("int"),
        PosixSignal.SIGQUIT => StopReason.Quick("quit"),
        _ => _stop,
    };

    private void MarkReady(WorkerProcess worker)
    {
        if (worker.State != WorkerState.Booting || worker.StopRequested)
        {
            return;
        }
        var now = _time.GetUtcNow();
        worker.State = WorkerState.Ready;
        worker.ReadyAt = now;
        PublishReadyWorkers();
        _log.Information("Worker {Slot} ready (pid: {Pid}, generation {Generation}) after {BootMs} ms",
            worker.Identity.Slot, worker.Pid, worker.Identity.Generation, (int)(now - worker.StartedAt).TotalMilliseconds);
        if (!_booted && _slots.All(slot => _workers.Any(w => w.Identity.Slot == slot.Index && w.State == WorkerState.Ready)))
        {
            _booted = true;
            _log.Information("All {Workers} workers ready", _slots.Length);
        }
    }

    private void TakeOutOfRotation(WorkerProcess worker, WorkerState newState)
    {
        var wasInRotation = worker.State == WorkerState.Ready;
        worker.State = newState;
        if (wasInRotation)
        {
            PublishReadyWorkers();
        }
    }

    private void PublishReadyWorkers() =>
        _destinations.Publish([.. _workers.Where(w => w.State == WorkerState.Ready).Select(w => w.Key)]);

    private void ScheduleRespawn(WorkerSlot slot, WorkerProcess failed)
    {
        var now = _time.GetUtcNow();
        var servedLongEnough = failed.ReadyAt is { } readyAt && now - readyAt >= RespawnBackoff.StableUptime;
        slot.ConsecutiveFailures = servedLongEnough ? 1 : slot.ConsecutiveFailures + 1;
        var delay = RespawnBackoff.Delay(slot.ConsecutiveFailures);
        if (delay > TimeSpan.Zero)
        {
            _log.Warning("Worker {Slot} failed {Failures} times in a row; starting it again in {Delay} s",
                slot.Index, slot.ConsecutiveFailures, delay.TotalSeconds);
        }
        slot.RespawnAt = now + delay;
        StartDueWorkers();
    }

    private void StartDueWorkers()
    {
        var now = _time.GetUtcNow();
        foreach (var slot in _slots)
        {
            if (slot.RespawnAt is { } due && due <= now)
            {
                slot.RespawnAt = null;
                StartWorker(slot);
            }
        }
    }

    private void StartWorker(WorkerSlot slot)
    {
        var identity = new WorkerIdentity(slot.Index, _generation, ++_serial);
        WorkerProcess worker;
        try
        {
            worker = _launcher.Launch(identity, LogWorkerOutput);
        }
        catch (Exception exception) when (exception is System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            _log.Error("Could not start {Worker}: {Reason}", identity, exception.Message);
            if (!_booted)
            {
                _stop = StopReason.BootFailure($"Worker failed to boot: {identity} could not be started: {exception.Message}");
                return;
            }
            slot.ConsecutiveFailures++;
            slot.RespawnAt = _time.GetUtcNow() + RespawnBackoff.Delay(slot.ConsecutiveFailures);
            return;
        }
        _workers.Add(worker);
        _ = worker.Exited.ContinueWith(exit => _events.Writer.TryWrite(new WorkerExited(worker, exit.Result)), TaskScheduler.Default);
        _log.Information("Booting worker with pid: {Pid} (worker {Slot}, generation {Generation})", worker.Pid, identity.Slot, identity.Generation);
    }

    private void KillWorkersPastBootTimeout()
    {
        var now = _time.GetUtcNow();
        foreach (var worker in _workers.Where(w => w.State == WorkerState.Booting && !w.StopRequested && now - w.StartedAt > _options.BootTimeout).ToList())
        {
            var reason = $"was not ready within {_options.BootTimeout.TotalSeconds} s (--boot-timeout)";
            _log.Error("Worker {Slot} (pid: {Pid}) {Reason}; killing it", worker.Identity.Slot, worker.Pid, reason);
            worker.Signal(Libc.SIGKILL);
            if (!_booted)
            {
                _stop = StopReason.BootFailure(DescribeBootFailure(worker, reason));
                return;
            }
        }
    }

    // Trimmed and NativeAOT apps cannot load the worker-host: a worker is ready when its socket accepts.
    private void ProbeWorkersWithoutHook()
    {
        if (_options.App.StartupHooksSupported)
        {
            return;
        }
        foreach (var worker in _workers.Where(w => w.State == WorkerState.Booting).ToList())
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(_runDirectory.WorkerSocketPath(worker.Key)));
                MarkReady(worker);
            }
            catch (SocketException)
            {
                // Not listening yet.
            }
        }
    }

    private WorkerProcess? Find(string workerKey) => _workers.Find(w => w.Key == workerKey);

    private void LogWorkerOutput(WorkerProcess worker, string line, bool isError) =>
        _log.Write(isError ? LogEventLevel.Error : LogEventLevel.Information, "[worker {Slot} pid {Pid}] {Line}", worker.Identity.Slot, worker.Pid, line);

    private static string DescribeBootFailure(WorkerProcess worker, string what)
    {
        var lines = worker.Tail.Lines;
        var output = lines.Count == 0 ? " It wrote nothing." : " Its last output:" + string.Concat(lines.Select(line => $"{Environment.NewLine}    {line}"));
        return $"Worker failed to boot: {worker.Identity} (pid: {worker.Pid}) {what}.{output}";
    }
}
