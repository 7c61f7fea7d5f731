using System.Globalization;
using Supervisor.Cli;

namespace Supervisor;

/// <summary>
/// <c>--pidfile</c>: the supervisor's pid in a file for init scripts and monitoring, as Gunicorn writes it.
/// Refused if the file names another supervisor that still runs; removed at stop if it is still ours.
/// </summary>
internal sealed class Pidfile : IDisposable
{
    private readonly string _path;

    private Pidfile(string path) => _path = path;

    /// <param name="upgradingFrom">The supervisor a binary upgrade replaces: the file stays its own until <see cref="TakeOver"/>.</param>
    public static Pidfile? Create(string? path, int? upgradingFrom = null)
    {
        if (path is null)
        {
            return null;
        }
        var named = ReadPid(path);
        if (named is { } other && other != Environment.ProcessId && other != upgradingFrom && Directory.Exists($"/proc/{other}"))
        {
            throw new UsageException($"--pidfile '{path}' names pid {other}, which is running; stop that supervisor, or remove the file if it is not one");
        }
        var pidfile = new Pidfile(path);
        if (named is null || named != upgradingFrom)
        {
            pidfile.TakeOver();
        }
        return pidfile;
    }

    /// <summary>Writes this process's pid: at start, or when a binary upgrade's new supervisor starts serving.</summary>
    public void TakeOver()
    {
        try
        {
            File.WriteAllText(_path, $"{Environment.ProcessId}\n");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--pidfile '{_path}' cannot be written ({exception.Message.TrimEnd('.')}); give a writable path");
        }
    }

    public void Dispose()
    {
        if (ReadPid(_path) == Environment.ProcessId)
        {
            File.Delete(_path);
        }
    }

    private static int? ReadPid(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
