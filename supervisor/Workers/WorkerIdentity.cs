namespace Supervisor.Workers;

/// <summary>
/// Who a worker process is: its slot (0..N-1, kept across respawns), the reload generation it belongs
/// to, and a serial number unique to this spawn. The key names its socket and its proxy destination,
/// so connections pooled for one process are never reused for its replacement.
/// </summary>
internal readonly record struct WorkerIdentity(int Slot, int Generation, int Serial)
{
    public string Key => $"w{Slot}-{Serial}";

    public override string ToString() => $"worker {Slot} (generation {Generation})";
}
