using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Supervisor.Cli;
using Supervisor.Native;

namespace Supervisor.Workers;

/// <summary>
/// The private directory that holds the control socket and every worker's socket. Mode 0700, owned by
/// the supervisor's user: the directory, not the sockets' own modes (which follow the umask), is what
/// keeps other users away from the workers.
/// </summary>
internal sealed partial class RunDirectory : IDisposable
{
    private const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const string ControlSocketName = "control.sock";

    private const string HandoffSocketName = "handoff.sock";

    private const string AccessLogSocketName = "access.sock";

    // sockaddr_un.sun_path holds 108 bytes with the terminating NUL; leave room for the longest worker name.
    private const int MaxDirectoryPathLength = 80;

    private const string FreshDirectoryPrefix = "supervisor-";

    private readonly bool _createdByUs;

    private RunDirectory(string path, bool createdByUs)
    {
        FullPath = path;
        _createdByUs = createdByUs;
    }

    public string FullPath { get; }

    public string ControlSocketPath => Path.Combine(FullPath, ControlSocketName);

    /// <summary>--balancer handoff: where the workers receive the client connections the supervisor accepted.</summary>
    public string HandoffSocketPath => Path.Combine(FullPath, HandoffSocketName);

    /// <summary>--balancer kernel and handoff: where the workers send the access-log lines of the requests they serve.</summary>
    public string AccessLogSocketPath => Path.Combine(FullPath, AccessLogSocketName);

    /// <summary>Where <c>supervisor status</c> and <c>supervisor reload</c> reach this supervisor.</summary>
    public string CommandSocketPath => Path.Combine(FullPath, Control.CommandProtocol.SocketName);

    /// <summary>Where the workers' key ring lives when it cannot persist; removed with the sockets.</summary>
    public string TransientKeyDirectory => Path.Combine(FullPath, "keys");

    /// <summary>Default socket directories of killed supervisors that <see cref="Open"/> removed.</summary>
    public IReadOnlyList<string> RemovedAbandonedDirectories { get; private init; } = [];

    /// <summary>Opens the directory <c>--socket-dir</c> names, or creates a fresh one when it names none.</summary>
    /// <param name="upgrading">Started by a binary upgrade: the supervisor it replaces still uses its directory.</param>
    public static RunDirectory Open(string? requested, bool upgrading = false) =>
        requested is null ? CreateFresh() : OpenRequested(requested, upgrading);

    /// <summary>The socket of the worker called <paramref name="workerKey"/>; the key doubles as the proxy's host name.</summary>
    public string WorkerSocketPath(string workerKey) =>
        WorkerKeyPattern().IsMatch(workerKey)
            ? Path.Combine(FullPath, workerKey + ".sock")
            : throw new ArgumentException($"'{workerKey}' is not a worker key", nameof(workerKey));

    /// <summary>Removes the sockets this supervisor made, the transient key ring, and the directory if it made that too.</summary>
    public void Dispose()
    {
        foreach (var path in OurSocketFiles())
        {
            TryDelete(path);
        }
        try
        {
            // Keys that were never meant to outlive this run; left here, they kept the directory from going.
            Directory.Delete(TransientKeyDirectory, recursive: true);
        }
        catch (Exception exception) when (exception is DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            // None was made (the ring persisted), or it is not ours to remove: the directory stays, as below.
        }
        if (_createdByUs)
        {
            try
            {
                Directory.Delete(FullPath, recursive: false);
            }
            catch (IOException)
            {
                // Not empty: something else was put there; leave it for its owner.
            }
        }
    }

    /// <summary>Where a supervisor without --socket-dir makes its directory: $XDG_RUNTIME_DIR, else the temp directory.</summary>
    private static string FreshParent() =>
        Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } runtimeDirectory && Directory.Exists(runtimeDirectory)
            ? runtimeDirectory
            : Path.GetTempPath();

    /// <summary>
    /// The parents a running supervisor's default directory may be in, seen from another process of the
    /// same user: its own choice, and the temp directory (a service has no $XDG_RUNTIME_DIR; a login shell does).
    /// </summary>
    public static IReadOnlyList<string> FreshParents() => [.. new[] { FreshParent(), Path.GetTempPath() }.Select(Path.TrimEndingDirectorySeparator).Distinct()];

    /// <summary>The default directories of this user's running supervisors that have a command socket, by pid.</summary>
    public static IReadOnlyList<(int Pid, string CommandSocket)> FindRunning(int? pid = null)
    {
        var found = new List<(int, string)>();
        foreach (var parent in FreshParents())
        {
            IEnumerable<string> directories;
            try
            {
                directories = [.. Directory.EnumerateDirectories(parent, FreshDirectoryPrefix + (pid is null ? "*" : $"{pid}-*"))];
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var path in directories)
            {
                var socket = Path.Combine(path, Control.CommandProtocol.SocketName);
                if (FreshDirectoryName().Match(Path.GetFileName(path)) is { Success: true } name
                    && int.TryParse(name.Groups[1].ValueSpan, out var owner)
                    && Libc.IsProcessAlive(owner)
                    && Libc.GetPathStatus(socket) is { IsSocket: true } status
                    && status.OwnerId == Libc.EffectiveUserId)
                {
                    found.Add((owner, socket));
                }
            }
        }
        return found;
    }

    private static RunDirectory CreateFresh() => CreateFreshIn(FreshParent(), "the default socket directory");

    private static RunDirectory CreateFreshIn(string parent, string what)
    {
        var removed = RemoveAbandoned(parent);
        var path = Path.Combine(parent, $"{FreshDirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        if (path.Length > MaxDirectoryPathLength)
        {
            throw new UsageException($"{what} '{path}' is too long for Unix socket paths ({path.Length} > {MaxDirectoryPathLength} characters); choose a shorter --socket-dir");
        }
        CreatePrivate(path, what);
        return new RunDirectory(path, createdByUs: true) { RemovedAbandonedDirectories = removed };
    }

    /// <summary>
    /// The live supervisors' command sockets in a --socket-dir: its own, and those of supervisors started
    /// there by a binary upgrade (each in a directory of its own inside it), newest first.
    /// </summary>
    public static IReadOnlyList<string> CommandSocketsIn(string socketDirectory)
    {
        var candidates = new List<string> { Path.Combine(socketDirectory, Control.CommandProtocol.SocketName) };
        try
        {
            candidates.AddRange(Directory.EnumerateDirectories(socketDirectory, FreshDirectoryPrefix + "*")
                .Select(directory => Path.Combine(directory, Control.CommandProtocol.SocketName)));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }
        return [.. candidates
            .Where(socket => Libc.GetPathStatus(socket) is { IsSocket: true } status && status.OwnerId == Libc.EffectiveUserId)
            .OrderByDescending(File.GetLastWriteTimeUtc)];
    }

    /// <summary>
    /// A supervisor killed with SIGKILL (the OOM killer, a test harness) cannot remove its default
    /// directory, and every start makes a new one, so they would pile up in /tmp. Remove those of this
    /// user whose supervisor is gone: the pid in the name is not running (so a supervisor that is still
    /// between mkdir and binding its control socket is left alone) and the control socket does not
    /// answer (so a pid from another pid namespace sharing this /tmp is not mistaken for a dead one).
    /// </summary>
    private static List<string> RemoveAbandoned(string parent)
    {
        var removed = new List<string>();
        try
        {
            foreach (var path in Directory.EnumerateDirectories(parent, FreshDirectoryPrefix + "*"))
            {
                if (TryRemoveAbandoned(path))
                {
                    removed.Add(path);
                }
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Tidying up is a courtesy: a parent we cannot list, or a directory another supervisor
            // removed first, must not stop this one from starting.
        }
        return removed;
    }

    private static bool TryRemoveAbandoned(string path)
    {
        if (FreshDirectoryName().Match(Path.GetFileName(path)) is not { Success: true } name
            || !int.TryParse(name.Groups[1].ValueSpan, out var pid)
            || Libc.IsProcessAlive(pid)
            || Libc.GetPathStatus(path) is not { IsDirectory: true } status
            || status.OwnerId != Libc.EffectiveUserId
            || status.Permissions != PrivateMode)
        {
            return false;
        }
        var abandoned = new RunDirectory(path, createdByUs: true);
        if (abandoned.IsControlSocketLive())
        {
            return false;
        }
        abandoned.Dispose();
        return !Directory.Exists(path);
    }

    private static RunDirectory OpenRequested(string path, bool upgrading)
    {
        if (path.Length > MaxDirectoryPathLength)
        {
            throw new UsageException($"--socket-dir '{path}' is too long for Unix socket paths ({path.Length} > {MaxDirectoryPathLength} characters); choose a shorter path");
        }
        if (Libc.GetPathStatus(path) is not { } status)
        {
            CreatePrivate(path, "--socket-dir");
            return new RunDirectory(path, createdByUs: true);
        }
        EnsurePrivate(path, status, "--socket-dir");
        var directory = new RunDirectory(path, createdByUs: false);
        if (upgrading && directory.IsControlSocketLive())
        {
            // The supervisor being replaced serves from this directory until it has drained.
            return CreateFreshIn(path, "--socket-dir");
        }
        directory.ClearStaleSockets();
        return directory;
    }

    private static void CreatePrivate(string path, string what)
    {
        if (!Libc.TryMakeDirectory(path, PrivateMode, out var errno))
        {
            throw new UsageException($"{what} '{path}' cannot be created (errno {errno}: {Marshal.GetPInvokeErrorMessage(errno)}); choose a writable location with --socket-dir");
        }
        // mkdir honours the umask, which can only take bits away; check what we really got.
        EnsurePrivate(path, Libc.GetPathStatus(path) ?? throw new UsageException($"{what} '{path}' vanished after it was created"), what);
    }

    private static void EnsurePrivate(string path, PathStatus status, string what)
    {
        if (status.IsSymbolicLink)
        {
            throw new UsageException($"{what} '{path}' is a symbolic link, which the supervisor does not follow; give the real directory");
        }
        if (!status.IsDirectory)
        {
            throw new UsageException($"{what} '{path}' exists and is not a directory; remove it or choose another path");
        }
        if (status.OwnerId != Libc.EffectiveUserId)
        {
            throw new UsageException($"{what} '{path}' is owned by uid {status.OwnerId}, not by the supervisor's user (uid {Libc.EffectiveUserId}); use a directory of your own");
        }
        if (status.Permissions != PrivateMode)
        {
            throw new UsageException($"{what} '{path}' has mode {Convert.ToString((int)status.Permissions, 8)}, so others could reach the workers; it must be 700 (chmod 700 '{path}')");
        }
    }

    /// <summary>
    /// A supervisor killed with SIGKILL leaves its socket files behind, and the next bind to those names
    /// would fail. Remove them, unless another supervisor is alive on this directory, and never touch
    /// anything that is not a socket owned by us.
    /// </summary>
    private void ClearStaleSockets()
    {
        if (IsControlSocketLive())
        {
            throw new UsageException($"--socket-dir '{FullPath}' is in use by another running supervisor; give each supervisor its own directory");
        }
        foreach (var path in OurSocketFiles())
        {
            TryDelete(path);
        }
        foreach (var path in Directory.EnumerateFileSystemEntries(FullPath).Where(IsOurSocketName))
        {
            throw new UsageException($"'{path}' in --socket-dir is not a socket of this user's; remove it or choose another directory");
        }
    }

    private bool IsControlSocketLive() => Answers(ControlSocketPath);

    /// <summary>Whether a process accepts connections on the Unix socket at <paramref name="socketPath"/>: a live supervisor, not a file one left behind.</summary>
    public static bool Answers(string socketPath)
    {
        if (Libc.GetPathStatus(socketPath) is not { IsSocket: true })
        {
            return false;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Files with the names this supervisor gives its sockets that are sockets owned by this user.</summary>
    private List<string> OurSocketFiles() =>
        Directory.Exists(FullPath)
            ? Directory.EnumerateFileSystemEntries(FullPath)
                .Where(IsOurSocketName)
                .Where(path => Libc.GetPathStatus(path) is { IsSocket: true } status && status.OwnerId == Libc.EffectiveUserId)
                .ToList()
            : [];

    private static bool IsOurSocketName(string path)
    {
        var name = Path.GetFileName(path);
        return name is ControlSocketName or HandoffSocketName or Control.CommandProtocol.SocketName || (name.EndsWith(".sock", StringComparison.Ordinal) && WorkerKeyPattern().IsMatch(name[..^".sock".Length]));
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [GeneratedRegex("^" + FreshDirectoryPrefix + "([0-9]+)-[0-9a-f]{8}$")]
    private static partial Regex FreshDirectoryName();

    [GeneratedRegex("^w[0-9]+-[0-9]+$")]
    private static partial Regex WorkerKeyPattern();
}
