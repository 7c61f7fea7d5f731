namespace Supervisor;

/// <summary>
/// Settings the front makes to its own .NET runtime through environment variables the runtime reads
/// once, at first use: set first thing in Main, unless the user set them. The workers do not inherit
/// what the supervisor set (their runtime stays the app's); a value the user set reaches them.
/// Each was measured in bench/ (bench/README.md, "What moved the supervisor's front").
/// </summary>
internal static class FrontRuntimeSettings
{
    private static readonly (string Name, string Value)[] Settings =
    [
        // The shared buffer pool keeps only a few arrays of each size per core. Every request in flight
        // holds pooled buffers (its header block, its response's data): under a few hundred at once most
        // rents missed, each allocated a fresh array that became garbage on return, and the collector
        // kept decommitting and faulting in pages. 256 per core: page faults per request 0.8 → 0.05, the
        // front's CPU per request −11%. A pool only keeps arrays that were once out at the same time, so
        // an idle front holds none; after a burst it keeps what the peak needed (about 8 MB at -c256).
        ("DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION", "256"),
        // Socket operations complete on the event-loop thread that saw them ready, instead of a hop to the
        // thread pool each: one event-loop thread per core, and the worker connections' read loops then
        // hand each response to its request on that thread. Won 15 of 16 pairs, with less CPU per
        // request in 14. Safe here because nothing in the front blocks a thread: what runs inline only
        // parses frames and writes to pipes, and Kestrel still runs requests and TLS on the thread pool.
        ("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1"),
    ];

    private static readonly List<string> SetBySupervisor = [];

    /// <summary>The variables the supervisor set for itself, to keep out of the workers' environment.</summary>
    public static IReadOnlyList<string> FrontOnlyVariables => SetBySupervisor;

    /// <summary>Must run before the runtime reads them (the first rent from the shared pool, the first socket): first thing in Main.</summary>
    public static void Apply()
    {
        foreach (var (name, value) in Settings)
        {
            if (Environment.GetEnvironmentVariable(name) is null)
            {
                Environment.SetEnvironmentVariable(name, value);
                SetBySupervisor.Add(name);
            }
        }
    }
}
