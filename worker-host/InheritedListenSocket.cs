using System.Runtime.InteropServices;

namespace Supervisor.WorkerHost;

/// <summary>
/// This worker's copy of a listening socket inherited from the supervisor (--balancer kernel). Kestrel
/// wraps a ListenHandle descriptor without owning it (since .NET 7: "to avoid side-effects on the
/// handle"), so its unbind stops accepting but leaves the descriptor open until the process exits: at
/// TERM, the socket would go on taking clients into its backlog while the last worker finished its
/// requests. <see cref="Close"/> closes the copy with a plain close(), which leaves the socket listening
/// for every other process that holds it, and closes it for good once the last copy is gone.
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
}
