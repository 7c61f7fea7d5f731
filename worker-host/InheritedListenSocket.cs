using System.Runtime.InteropServices;

namespace Supervisor.WorkerHost;

/// <summary>
/// This worker's copy of a listening socket inherited from the supervisor (--balancer kernel). Kestrel
/// wraps a ListenHandle descriptor without owning it (since .NET 7: "to avoid side-effects on the
/// handle"), so its unbind stops accepting but leaves the descriptor open until the process exits: at
/// TERM, the socket would go on taking clients into its backlog while the last worker finished its
/// requests. <see cref="Close"/> closes the copy with a plain close(), which leaves the socket listening
/// for every other process that holds it, and closes it for good once the last copy is gone.
/// <see cref="HasWaitingConnection"/> looks at the socket's queue without taking from it.
/// </summary>
internal sealed partial class InheritedListenSocket(int descriptor)
{
    // What the descriptor named when it was bound: a number closed elsewhere may name another file since.
    private readonly string? _identity = IdentityOf(descriptor);
    private int _closed;

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0 && _identity is not null && IdentityOf(descriptor) == _identity)
        {
            close(descriptor);
        }
    }

    /// <summary>Whether a connection is queued, for this worker or another to accept (false once closed).</summary>
    public unsafe bool HasWaitingConnection()
    {
        const short Readable = 0x1; // POLLIN: a listening socket is readable while its accept queue holds a connection.
        var entry = new PollEntry { Descriptor = descriptor, Events = Readable };
        return Volatile.Read(ref _closed) == 0 && poll(&entry, 1, 0) == 1 && (entry.ReturnedEvents & Readable) != 0;
    }

    // "socket:[inode]" while the number names the inherited socket.
    private static string? IdentityOf(int descriptor)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{descriptor}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int descriptor);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int poll(PollEntry* entries, nuint count, int timeoutMilliseconds);

    private struct PollEntry // struct pollfd
    {
        public int Descriptor;
        public short Events;
        public short ReturnedEvents;
    }
}
