using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// The system's Chromium, headless, driven over the DevTools protocol (JSON commands on a WebSocket): it
/// opens pages and runs scripts in them, as a user's browser would run the app's own. One page, one
/// command at a time.
/// </summary>
internal sealed class HeadlessBrowser : IAsyncDisposable
{
    private static readonly TimeSpan StartLimit = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CommandLimit = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _page = new();
    private int _lastId;

    private HeadlessBrowser(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessBrowser> StartAsync()
    {
        var profile = Directory.CreateTempSubdirectory("sup-chromium-").FullName;
        // --no-sandbox: Chromium's sandbox refuses to run as root, which CI is.
        var startInfo = new ProcessStartInfo("chromium", ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-port=0", $"--user-data-dir={profile}", "about:blank"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new InvalidOperationException("chromium did not start");
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new InvalidOperationException($"this test drives the system's Chromium, which cannot be started ({exception.Message}): apt-get install chromium (.ci/run does)", exception);
        }
        process.BeginOutputReadLine(); // Its chatter (dbus, GPU) is of no interest; the pipes must not fill.
        process.BeginErrorReadLine();
        var browser = new HeadlessBrowser(process, profile);
        try
        {
            await browser.ConnectAsync();
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    public Task NavigateAsync(Uri url) => SendAsync("Page.navigate", new JsonObject { ["url"] = url.ToString() });

    /// <summary>Runs <paramref name="expression"/> in the page and returns its value as JSON text (null when undefined).</summary>
    public async Task<string?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        return result["result"]?["value"]?.ToJsonString();
    }

    public async ValueTask DisposeAsync()
    {
        _page.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
        Directory.Delete(_profile, recursive: true);
    }

    // Chromium writes the port it chose into DevToolsActivePort; its /json/list names the page's socket.
    private async Task ConnectAsync()
    {
        var portFile = Path.Combine(_profile, "DevToolsActivePort");
        var port = await Eventually.ValueAsync(
            () => File.Exists(portFile) ? File.ReadLines(portFile).FirstOrDefault() : null,
            line => int.TryParse(line, out _), StartLimit, "Chromium wrote its DevTools port");
        using var http = new HttpClient { Timeout = CommandLimit };
        var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
        var page = targets.First(target => target?["type"]?.GetValue<string>() == "page")!;
        await _page.ConnectAsync(new Uri(page["webSocketDebuggerUrl"]!.GetValue<string>()), CancellationToken.None);
    }

    private async Task<JsonNode> SendAsync(string method, JsonObject parameters)
    {
        var id = ++_lastId;
        var command = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters };
        using var timeout = new CancellationTokenSource(CommandLimit);
        await _page.SendAsync(Encoding.UTF8.GetBytes(command.ToJsonString()), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
        while (true)
        {
            var message = await ReceiveAsync(timeout.Token);
            if (message["id"]?.GetValue<int>() != id)
            {
                continue; // An event, or the answer to nothing we still wait for.
            }
            return message["error"] is { } error
                ? throw new InvalidOperationException($"{method} failed: {error.ToJsonString()}")
                : message["result"]!;
        }
    }

    private async Task<JsonNode> ReceiveAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        WebSocketReceiveResult received;
        do
        {
            received = await _page.ReceiveAsync(chunk, cancellationToken);
            buffer.Write(chunk, 0, received.Count);
        }
        while (!received.EndOfMessage);
        return JsonNode.Parse(buffer.ToArray()) ?? throw new JsonException("an empty DevTools message");
    }
}
