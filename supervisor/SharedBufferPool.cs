namespace Supervisor;

/// <summary>
/// Sizes the runtime's shared buffer pool for a proxy. Every request in flight holds pooled buffers in
/// <c>HttpClient</c>'s HTTP/2 connection (one to encode its headers, one for the response's data), but
/// the shared pool keeps only a few arrays of each size per core. Under a few hundred concurrent requests
/// most rents missed: each allocated a fresh 4–16 KB array that became garbage on return, and the
/// collector kept decommitting and faulting in the pages. Measured at -c256 (bench/README.md):
/// 0.8 page faults per request → 0.05, the front's CPU per request −11%, +10% req/s.
/// </summary>
internal static class SharedBufferPool
{
    /// <summary>The runtime reads this once, the first time anything rents from the shared pool.</summary>
    public const string ArraysPerPartitionVariable = "DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION";

    // Arrays of one size kept per core: room for the buffers of several hundred requests in flight on
    // a small machine. The pool only keeps arrays that were once out at the same time, so a front that
    // has never been busy holds none; after a burst it keeps what the peak needed (about 8 MB at -c256).
    private const int ArraysPerPartition = 256;

    /// <summary>True when the supervisor set the variable, so it is its own tuning and not the user's.</summary>
    public static bool SizedBySupervisor { get; private set; }

    /// <summary>Must run before anything rents from <see cref="System.Buffers.ArrayPool{T}.Shared"/>: first thing in Main.</summary>
    public static void Configure()
    {
        if (Environment.GetEnvironmentVariable(ArraysPerPartitionVariable) is not null)
        {
            return; // The user's own choice stands, for the supervisor and its workers alike.
        }
        Environment.SetEnvironmentVariable(ArraysPerPartitionVariable, ArraysPerPartition.ToString(System.Globalization.CultureInfo.InvariantCulture));
        SizedBySupervisor = true;
    }
}
