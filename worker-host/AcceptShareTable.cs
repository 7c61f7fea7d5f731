using System.Runtime.InteropServices;

namespace Supervisor.WorkerHost;

/// <summary>
/// --balancer kernel: the memory the workers share, in which each worker in rotation says how many client
/// connections it holds, so that one holding more than its share leaves a queued burst to the others
/// (<see cref="FairAccept"/>). The supervisor creates it (an anonymous memfd) and gives each worker
/// process an entry of its own; the worker maps it from the descriptor it inherits.
/// <para>
/// Layout: a 64-byte header (+0 how many entries have been handed out, so readers look no further; +8 a
/// 32-bit count of changes to any entry's connections, a futex word on which a worker waiting for its
/// turn sleeps; +12 how many workers so wait), then <see cref="Capacity"/> entries of 64 bytes, a cache line each, so that no two workers
/// write the same line. The header's first word is the supervisor's; the change count and the waiters are
/// every worker's, changed only with Interlocked. Each entry word has one writer at any time: its worker's
/// while that process lives, and the supervisor zeroes it only once the worker has exited,
/// before it hands the entry out again.
/// </para>
/// </summary>
internal sealed unsafe partial class AcceptShareTable : IDisposable
{
    /// <summary>Worker processes that can hold an entry at once (a reload's overlap included).</summary>
    public const int Capacity = 1024;

    private const int LineBytes = 64;
    private const nuint Bytes = LineBytes * (Capacity + 1);

    private byte* _memory;

    private AcceptShareTable(byte* memory) => _memory = memory;

    /// <summary>The supervisor's: a new, zeroed table; <paramref name="descriptor"/> is closed on exec until a worker's start opens it.</summary>
    public static AcceptShareTable Create(out int descriptor)
    {
        const uint CloseOnExec = 1; // MFD_CLOEXEC
        descriptor = memfd_create("supervisor-accept-share", CloseOnExec);
        if (descriptor < 0)
        {
            throw new IOException($"memfd_create failed (errno {Marshal.GetLastPInvokeError()})");
        }
        if (ftruncate(descriptor, (long)Bytes) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            close(descriptor);
            throw new IOException($"cannot size the accept-share table (errno {errno})");
        }
        return new AcceptShareTable(Map(descriptor));
    }

    /// <summary>
    /// A worker's: maps the table from the descriptor it inherited, then closes that descriptor (the
    /// mapping stays), so the processes the app starts do not inherit it. Null if it is not the table.
    /// </summary>
    public static AcceptShareTable? Attach(int descriptor)
    {
        try
        {
            return new AcceptShareTable(Map(descriptor));
        }
        catch (IOException)
        {
            return null;
        }
        finally
        {
            close(descriptor);
        }
    }

    /// <summary>Entries handed out so far (the highest index + 1): readers scan no further.</summary>
    public int EntriesInUse
    {
        get => (int)Volatile.Read(ref *(long*)_memory);
        set => Volatile.Write(ref *(long*)_memory, value);
    }

    /// <summary>
    /// A worker's connections changed (one accepted or closed): wakes the workers waiting for a change.
    /// Only when some wait does this cost a system call.
    /// </summary>
    public void Changed()
    {
        Interlocked.Increment(ref *ChangeWord);
        if (Volatile.Read(ref *WaiterWord) > 0)
        {
            syscall(FutexSystemCall, ChangeWord, FutexWake, int.MaxValue, null);
        }
    }

    /// <summary>
    /// Sleeps until a worker's connections change after <paramref name="seen"/> (from <see cref="Changes"/>,
    /// read after <see cref="AddWaiter"/>, so no change can slip between the two), or <paramref name="timeout"/>.
    /// </summary>
    public void WaitForChange(int seen, TimeSpan timeout)
    {
        var ticks = timeout.Ticks;
        var time = new Timespec { Seconds = ticks / TimeSpan.TicksPerSecond, Nanoseconds = ticks % TimeSpan.TicksPerSecond * 100 };
        syscall(FutexSystemCall, ChangeWord, FutexWait, seen, &time); // Returns at once if the count has moved on.
    }

    /// <summary>The count of changes so far, to wait from.</summary>
    public int Changes => Volatile.Read(ref *ChangeWord);

    /// <summary>This worker may wait for changes from now on: every change wakes it.</summary>
    public void AddWaiter() => Interlocked.Increment(ref *WaiterWord);

    public void RemoveWaiter() => Interlocked.Decrement(ref *WaiterWord);

    private int* ChangeWord => (int*)(_memory + 8);

    private int* WaiterWord => (int*)(_memory + 12);

    /// <summary>The entry at <paramref name="index"/> (0 ≤ index &lt; <see cref="Capacity"/>), in the shared memory itself.</summary>
    public ref Entry this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Capacity, nameof(index));
            return ref *(Entry*)(_memory + (LineBytes * (index + 1)));
        }
    }

    public void Dispose()
    {
        if (_memory is not null)
        {
            munmap(_memory, Bytes);
            _memory = null;
        }
    }

    // Without FUTEX_PRIVATE_FLAG: the word is shared with other processes.
    private const int FutexWait = 0, FutexWake = 1;

    private static long FutexSystemCall => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 202,
        Architecture.Arm64 => 98,
        var other => throw new PlatformNotSupportedException($"futex on {other}"),
    };

    private static byte* Map(int descriptor)
    {
        const int ReadWrite = 0x1 | 0x2, Shared = 0x1; // PROT_READ | PROT_WRITE, MAP_SHARED
        var memory = mmap(null, Bytes, ReadWrite, Shared, descriptor, 0);
        return memory == (void*)-1 ? throw new IOException($"cannot map the accept-share table (errno {Marshal.GetLastPInvokeError()})") : (byte*)memory;
    }

    /// <summary>One worker process's line. Words are read and written with Volatile or Interlocked: other processes read them.</summary>
    [StructLayout(LayoutKind.Explicit, Size = LineBytes)]
    public struct Entry
    {
        /// <summary>1 while the worker accepts client connections, else 0.</summary>
        [FieldOffset(0)]
        public long InRotation;

        /// <summary>Connections it accepted that are still open.</summary>
        [FieldOffset(8)]
        public long Open;

        /// <summary>Connections it ever accepted: a peer that stops taking them is seen not to move.</summary>
        [FieldOffset(16)]
        public long Accepted;

        /// <summary>The worker's process id, written as it enters rotation: what a peer's log names it by.</summary>
        [FieldOffset(24)]
        public long Pid;
    }

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int* address, int operation, int value, Timespec* timeout);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(int descriptor, long length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int descriptor, nint offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int descriptor);
}
