using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// The test app run on its own, without the supervisor, on a free loopback port: what a request gets from
/// the app alone is the reference the differential tests hold the supervisor to.
/// </summary>
internal sealed partial class AppAlone : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private AppAlone(Process process, ITestOutputHelper output)
    {
        _process = process;
        _output = output;
    }

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");

    /// <summary>Starts the app on http://127.0.0.1:0, or https with the given PEM files.</summary>
    public static async Task<AppAlone> StartAsync(ITestOutputHelper output, string app, (string CertFile, string KeyFile)? tls = null)
    {
        var startInfo = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(app)!,
        };
        startInfo.ArgumentList.Add(app);
        startInfo.Environment["ASPNETCORE_URLS"] = tls is null ? "http://127.0.0.1:0" : "https://127.0.0.1:0";
        startInfo.Environment["TESTAPP_ANNOUNCE"] = "1";
        if (tls is { } files)
        {
            startInfo.Environment["Kestrel__Certificates__Default__Path"] = files.CertFile;
            startInfo.Environment["Kestrel__Certificates__Default__KeyPath"] = files.KeyFile;
        }
        var process = new Process { StartInfo = startInfo };
        var alone = new AppAlone(process, output);
        process.OutputDataReceived += (_, e) => alone.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => alone.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            alone.BaseAddress = new Uri(await alone._listening.Task.WaitAsync(StartTimeout));
        }
        catch (TimeoutException)
        {
            await alone.DisposeAsync();
            throw new TimeoutException($"The app alone did not listen within {StartTimeout.TotalSeconds} s");
        }
        return alone;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        _output.WriteLine($"[app alone] {line}");
        if (ListeningPattern().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(match.Groups[1].Value);
        }
    }

    [GeneratedRegex(@"^listening on (\S+)")]
    private static partial Regex ListeningPattern();
}
