namespace Supervisor.WorkerHost;

/// <summary>
/// The hook's own diagnostics, one line each, which the supervisor captures per worker: notes on stdout
/// (logged at INFO), failures on stderr (logged at ERROR).
/// </summary>
internal static class HookLog
{
    public static void Note(string message) => Write(Console.Out, message);

    public static void Failure(string message) => Write(Console.Error, message);

    private static void Write(TextWriter stream, string message)
    {
        try
        {
            stream.WriteLine($"[worker-host] {message}");
        }
        catch (IOException)
        {
            // The stream is closed: nothing more we can do, and the app must not suffer for it.
        }
    }
}
