using System.Runtime.InteropServices;
using System.Threading.Channels;
using Serilog.Events;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Proxy;
using Supervisor.WorkerHost;
using Supervisor.Workers;

namespace Supervisor.Arbitration;

/// <summary>
/// Owns the worker pool. One loop reads one event at a time (worker messages, exits, signals, ticks),
/// so all worker state is changed by this loop alone, as in Gunicorn's arbiter. The loop is here;
/// the other parts of this class are split by concern: lifecycle, recycling, reload, scaling.
/// </summary>
internal sealed partial class Arbiter
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(250);

    private readonly ArbiterHooks _hooks;
    private readonly SystemdNotify _serviceManager;
    private readonly BinaryUpgrade _upgrade;
    private readonly PoolHealth _health;
    private readonly WorkerLauncher _launcher;
    private readonly WorkerDispatcher _dispatcher;
    private readonly RunDirectory _runDirectory;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Channel<ArbiterEvent> _events;
    private readonly List<WorkerSlot> _slots;
    private readonly List<Worker> _workers = [];
    private readonly List<Worker> _retiring = [];
    private LoadedConfiguration _configuration;
    private int _serial;
    private bool _booted;
    private long _ticks;
    private StopReason? _stop;
    private readonly DateTimeOffset _startedAt;

    public Arbiter(
        LoadedConfiguration configuration,
        ArbiterHooks hooks,
        SystemdNotify serviceManager,
        BinaryUpgrade upgrade,
        PoolHealth health,
        WorkerLauncher launcher,
        WorkerDispatcher dispatcher,
        RunDirectory runDirectory,
        Channel<ArbiterEvent> events,
        ILogger log,
        TimeProvider time)
    {
        _configuration = configuration;
        _hooks = hooks;
        _serviceManager = serviceManager;
        _upgrade = upgrade;
        _health = health;
        _launcher = launcher;
        _dispatcher = dispatcher;
        _runDirectory = runDirectory;
        _events = events;
        _log = log;
        _time = time;
        _startedAt = time.GetUtcNow();
        _slots = [.. Enumerable.Range(0, configuration.Options.Workers).Select(index => new WorkerSlot(index))];
    }

    /// <summary>The options in effect: those of the generation that serves.</summary>
    private SupervisorOptions Options => _configuration.Options;

    /// <summary>The worker processes still running, for the shutdown that follows <see cref="RunAsync"/>.</summary>
    public IReadOnlyList<WorkerProcess> Processes => [.. _workers.Select(w => w.Process)];

    /// <summary>Starts the pool and keeps it healthy until a signal or a boot failure ends the run.</summary>
    public async Task<StopReason> RunAsync()
    {
        using var ticker = _time.CreateTimer(_ => _events.Writer.TryWrite(new Tick()), null, TickInterval, TickInterval);
        StartMissingWorkers();
        while (_stop is null && await _events.Reader.WaitToReadAsync())
        {
            while (_stop is null && _events.Reader.TryRead(out var arbiterEvent))
            {
                Handle(arbiterEvent);
            }
        }
        StopBootingUpgrade();
        AnswerReloadWaiters(_reloadWaiters, ReloadReply.Stopping, "the supervisor is stopping");
        if (_reload is not null)
        {
            AnswerReloadWaiters(_reload.Waiters, ReloadReply.Stopping, "the supervisor is stopping");
        }
        return _stop ?? StopReason.Quick("end of events");
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    private void Handle(ArbiterEvent arbiterEvent)
    {
        switch (arbiterEvent)
        {
            case WorkerReported report:
                OnWorkerReported(report);
                break;
            case WorkerLost lost:
                OnWorkerLost(lost.WorkerKey, lost.Reason);
                break;
            case WorkerExited exited:
                OnWorkerExited(exited.Process, exited.ExitCode);
                break;
            case WorkerRequestLimitReached limit:
                OnRequestLimitReached(limit.WorkerKey, limit.Limit);
                break;
            case SignalReceived signal:
                OnSignal(signal.Signal);
                break;
            case Tick:
                OnTick();
                break;
            case UpgradeExited exited:
                OnUpgradeExited(exited);
                break;
            case TakeoverRequested takeover:
                OnTakeoverRequested(takeover);
                break;
            case ServingAfterUpgrade serving:
                OnServingAfterUpgrade(serving);
                break;
            case StopRequested stop:
                _stop = stop.Reason;
                break;
            case StatusRequested status:
                status.Reply.TrySetResult(DescribePool());
                break;
            case ReloadRequested reload:
                _log.Information("Handling command: reload (supervisor reload{Wait})", reload.Wait ? " --wait" : "");
                Reload(reload.Wait ? reload.Reply : null);
                if (!reload.Wait)
                {
                    reload.Reply.TrySetResult(new ReloadReply(ReloadReply.Requested, _servingGeneration, PoolStatus()));
                }
                break;
        }
    }

    // Gunicorn's loop, one step per verb.
    private void OnTick()
    {
        _ticks++;
        _serviceManager.OnLoopTurned();
        _health.LoopTurned();
        KillWorkersPastBootTimeout();
        KillSilentWorkers();
        KillLateUpgrade();
        PublishWorkers();
        ProbeWorkersWithoutHook();
        if (_ticks % 4 == 0)
        {
            SampleMemory();
        }
        RetryDueRecycles();
        StartMissingWorkers();
        StartQueuedReload();
        ReportRequestPathCounts();
    }

    // The 503s and the stalled clients of the request path since the last tick, summed up rather than
    // logged one by one.
    private void ReportRequestPathCounts()
    {
        if (_dispatcher.TakeRefusedCount() is var refused and > 0)
        {
            _log.Warning("{Refused} requests answered 503: no worker free (--worker-connections {Capacity}, --max-queue {MaxQueue} waiting) or none ready",
                refused, Options.WorkerConnections, Options.MaxQueue);
        }
        if (_dispatcher.TakeStalledClientCount() is var stalled and > 0)
        {
            _log.Warning("{Stalled} clients disconnected: they took nothing of their response for {Seconds} s (--send-timeout)",
                stalled, Options.SendTimeout.TotalSeconds);
        }
    }

    private void OnSignal(PosixSignal signal)
    {
        var name = SignalHandlers.Name(signal);
        switch (signal)
        {
            case PosixSignal.SIGTERM:
                _stop = StopReason.Graceful(name);
                break;
            case PosixSignal.SIGINT or PosixSignal.SIGQUIT:
                _stop = StopReason.Quick(name);
                break;
            case PosixSignal.SIGHUP:
                _log.Information("Handling signal: {Signal}", name);
                Reload(waiter: null);
                break;
            case SignalHandlers.SIGUSR1:
                _log.Information("Handling signal: {Signal}", name);
                _hooks.ReopenLogs();
                break;
            case PosixSignal.SIGTTIN:
                _log.Information("Handling signal: {Signal}", name);
                Scale(+1);
                break;
            case PosixSignal.SIGTTOU:
                _log.Information("Handling signal: {Signal}", name);
                Scale(-1);
                break;
            case SignalHandlers.SIGUSR2:
                OnUpgradeSignal(name);
                break;
            case PosixSignal.SIGWINCH:
                _log.Warning("Ignoring signal: {Signal}: the supervisor never runs detached; to stop the workers, stop the supervisor (TERM)", name);
                break;
        }
    }

    /// <summary>The pool in one line, for systemd's STATUS (what <c>systemctl status</c> shows).</summary>
    private string PoolStatus() =>
        $"{_workers.Count(w => w.InRotation && w.Generation == _servingGeneration)}/{_slots.Count} workers ready, generation {_servingGeneration}"
        + (_reload is { } reload ? $"; reloading: generation {reload.Generation} booting" : _reloadPending ? "; a reload is queued" : "");

    // Published where workers start, enter or leave rotation and exit, and at each tick (a recycle or a
    // stop changes a worker's state between those): the gauges read it from another thread.
    private void PublishWorkers() =>
        _health.Workers([.. _workers.Select(w => new PublishedWorker(w.Slot, StateOf(w).State, w.InRotation, w.Process.ResidentBytes))]);

    private Worker? Find(string workerKey) => _workers.Find(w => w.Key == workerKey);

    private Worker? Find(WorkerProcess process) => _workers.Find(w => w.Process == process);

    private WorkerSlot? SlotOf(Worker worker) => _slots.Find(slot => slot.Index == worker.Slot);

    /// <summary>
    /// Publishes the workers in rotation as one snapshot, then starts draining those retired since the
    /// last publish: closed, they take no new request, and are stopped when their last one is done.
    /// </summary>
    private void CommitRotation()
    {
        var inRotation = _workers.Where(w => w.InRotation).Select(w => w.Key).ToList();
        _dispatcher.Publish(inRotation);
        _hooks.RotationChanged(inRotation);
        if (Options.Balancer.WorkersServeClients())
        {
            foreach (var worker in _workers.Where(w => w.InRotation && !w.ToldToAccept))
            {
                worker.ToldToAccept = true;
                _hooks.SendToWorker(worker.Key, WorkerProtocol.Accept);
            }
        }
        _health.InRotation(inRotation.Count);
        PublishWorkers();
        _serviceManager.Status(PoolStatus());
        foreach (var worker in _retiring)
        {
            worker.Load.Close();
            _ = DrainAndStopAsync(worker);
        }
        _retiring.Clear();
    }

    private void LogWorkerOutput(WorkerProcess process, string line, LogEventLevel level) =>
        _log.Write(level, "[worker {Slot} pid {WorkerPid}] {Line}", process.Identity.Slot, process.Pid, line);

    private static string DescribeBootFailure(Worker worker, string what)
    {
        var lines = worker.Process.Tail.Lines;
        var output = lines.Count == 0 ? " It wrote nothing." : " Its last output:" + string.Concat(lines.Select(line => $"{Environment.NewLine}    {line}"));
        return $"{worker} {what}.{output}";
    }
}
