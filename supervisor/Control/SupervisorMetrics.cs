using System.Diagnostics.Metrics;

namespace Supervisor.Control;

/// <summary>
/// The pool's own metrics, beside ASP.NET Core's request and connection metrics of the front: exported
/// in Prometheus text on <c>--admin-bind</c>'s <c>/metrics</c> by OpenTelemetry's exporter.
/// </summary>
internal static class SupervisorMetrics
{
    public const string MeterName = "Supervisor";

    private static readonly Meter Meter = new(MeterName, Cli.VersionInfo.Version);

    /// <summary>Workers replaced while the pool ran, by why: max_requests, max_memory, timeout (killed for a silent heartbeat), exited.</summary>
    public static readonly Counter<long> WorkerReplacements = Meter.CreateCounter<long>("supervisor.worker.replacements", "{worker}", "Workers replaced, by reason");

    /// <summary>Reloads by result: completed, abandoned, refused.</summary>
    public static readonly Counter<long> Reloads = Meter.CreateCounter<long>("supervisor.reloads", "{reload}", "SIGHUP reloads, by result");

    /// <summary>
    /// Kernel and handoff modes: the requests the workers served, as each counted them (the front sees none,
    /// so ASP.NET Core's request metrics stay empty there). Added as each worker reports its running total:
    /// with every heartbeat and as it stops, so it lags by up to a heartbeat and keeps a replaced worker's.
    /// </summary>
    public static readonly Counter<long> WorkerServedRequests = Meter.CreateCounter<long>("supervisor.worker.requests", "{request}", "Requests the workers served, as they counted them (kernel and handoff modes)");

    /// <summary>Requests the supervisor answered 503 because no worker could take them.</summary>
    public static readonly Counter<long> RefusedRequests = Meter.CreateCounter<long>("supervisor.requests.refused", "{request}", "Requests answered 503: no worker free or none ready");

    /// <summary>Observes the workers in rotation, the requests at them and those waiting for one, and the workers' memory.</summary>
    public static void ObservePool(PoolHealth health, Func<int> inFlight, Func<int> queued)
    {
        var inRotation = () => health.WorkersInRotation;
        // Per slot, the worker requests go to (one per slot: a replacement enters as the old one leaves);
        // in all, every worker process, booting and draining ones too: what a memory limit must hold.
        Meter.CreateObservableGauge("supervisor.worker.memory", () => health.WorkerProcesses
            .Where(worker => worker.InRotation)
            .Select(worker => (Worker: worker, Bytes: worker.ResidentBytes()))
            .Where(sample => sample.Bytes is not null)
            .Select(sample => new Measurement<long>(sample.Bytes!.Value, new KeyValuePair<string, object?>("slot", sample.Worker.Slot))), "By", "Resident memory of the worker serving each slot");
        Meter.CreateObservableGauge("supervisor.workers", () => Arbitration.Arbiter.WorkerStates
            .Select(state => new Measurement<int>(health.WorkerProcesses.Count(worker => worker.State == state), new KeyValuePair<string, object?>("state", state))),
            "{worker}", "Worker processes by state: booting, ready (for a reload), serving, recycling, stopping");
        Meter.CreateObservableGauge("supervisor.workers.memory", () => health.WorkerProcesses.Sum(worker => worker.ResidentBytes() ?? 0), "By", "Resident memory of all worker processes");
        Meter.CreateObservableGauge("supervisor.workers.ready", inRotation, "{worker}", "Workers in rotation");
        Meter.CreateObservableGauge("supervisor.requests.in_flight", inFlight, "{request}", "Requests at the workers");
        Meter.CreateObservableGauge("supervisor.requests.queued", queued, "{request}", "Requests waiting for a worker (--max-queue)");
    }
}
