using System.Runtime.InteropServices;

namespace Supervisor.Native;

/// <summary>The few POSIX calls .NET does not expose: sending a chosen signal, and who owns a path.</summary>
internal static partial class Libc
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    private const int EPERM = 1;

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false if the process is gone.</summary>
    public static bool Kill(int pid, int signal) => kill(pid, signal) == 0;

    /// <summary>Whether a process with this pid exists (signal 0 checks without sending anything).</summary>
    public static bool IsProcessAlive(int pid) => kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() == EPERM;

    public static uint EffectiveUserId => geteuid();

    /// <summary>
    /// Marks an inherited descriptor close-on-exec, as every descriptor .NET opens is: a socket systemd
    /// passed would otherwise be inherited by every worker, and keep accepting connections into a
    /// backlog nobody reads after the supervisor is gone. False if it is not an open descriptor.
    /// </summary>
    public static bool SetCloseOnExec(int descriptor) => SetCloseOnExec(descriptor, true);

    /// <summary>Sets or clears close-on-exec: cleared, the next process started inherits the descriptor. False if it is not open.</summary>
    public static bool SetCloseOnExec(int descriptor, bool closeOnExec)
    {
        const int GetDescriptorFlags = 1, SetDescriptorFlags = 2, CloseOnExec = 1;
        var flags = fcntl(descriptor, GetDescriptorFlags, 0);
        return flags >= 0 && fcntl(descriptor, SetDescriptorFlags, closeOnExec ? flags | CloseOnExec : flags & ~CloseOnExec) == 0;
    }

    /// <summary>Whether the descriptor is open and close-on-exec (a process started now would not inherit it).</summary>
    public static bool ClosesOnExec(int descriptor)
    {
        const int GetDescriptorFlags = 1, CloseOnExec = 1;
        var flags = fcntl(descriptor, GetDescriptorFlags, 0);
        return flags >= 0 && (flags & CloseOnExec) != 0;
    }

    /// <summary>A new descriptor for the same open socket or file, close-on-exec (F_DUPFD_CLOEXEC).</summary>
    public static int DuplicateCloseOnExec(int descriptor)
    {
        const int DuplicateWithCloseOnExec = 1030, LowestNew = 3;
        var duplicate = fcntl(descriptor, DuplicateWithCloseOnExec, LowestNew);
        return duplicate >= 0 ? duplicate : throw new IOException($"cannot duplicate descriptor {descriptor} (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Closes a descriptor .NET does not own.</summary>
    public static void Close(int descriptor) => close(descriptor);

    /// <summary>Creates a directory, failing if anything (a file, a symlink, a directory) already has that name.</summary>
    public static bool TryMakeDirectory(string path, UnixFileMode mode, out int errno)
    {
        if (mkdir(path, (uint)mode) == 0)
        {
            errno = 0;
            return true;
        }
        errno = Marshal.GetLastPInvokeError();
        return false;
    }

    /// <summary>Owner, mode and type of <paramref name="path"/> itself, not of what a symlink points to.</summary>
    public static unsafe PathStatus? GetPathStatus(string path)
    {
        // statx has one layout on every architecture, unlike struct stat.
        var buffer = stackalloc byte[256];
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0)
        {
            return null;
        }
        var uid = *(uint*)(buffer + 20);
        var mode = *(ushort*)(buffer + 28);
        return new PathStatus(uid, mode);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int descriptor, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int descriptor);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdir(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}

/// <summary>The result of <see cref="Libc.GetPathStatus"/>.</summary>
internal readonly record struct PathStatus(uint OwnerId, ushort Mode)
{
    private const int TypeMask = 0xF000;

    public bool IsDirectory => (Mode & TypeMask) == 0x4000;

    public bool IsSocket => (Mode & TypeMask) == 0xC000;

    public bool IsSymbolicLink => (Mode & TypeMask) == 0xA000;

    public UnixFileMode Permissions => (UnixFileMode)(Mode & 0x1FF);
}
