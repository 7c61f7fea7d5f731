using Serilog.Events;
using Serilog.Formatting;
using Serilog.Parsing;
using Supervisor.Configuration;

namespace Supervisor.Logging;

/// <summary>
/// Gunicorn's error-log line: <c>[2026-11-24 10:00:00 +0000] [PID] [INFO] message</c>, so the tools
/// that already parse Gunicorn's logs parse ours. Strings are written as they are, not quoted.
/// </summary>
internal sealed class GunicornFormatter : ITextFormatter
{
    private readonly string _pid = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public void Format(LogEvent logEvent, TextWriter output)
    {
        var timestamp = logEvent.Timestamp;
        output.Write('[');
        output.Write(timestamp.ToString("yyyy-MM-dd HH:mm:ss "));
        var offset = timestamp.Offset;
        output.Write(offset < TimeSpan.Zero ? '-' : '+');
        output.Write(offset.Duration().ToString("hhmm"));
        output.Write("] [");
        output.Write(_pid);
        output.Write("] [");
        output.Write(logEvent.Level.ToGunicornName());
        output.Write("] ");
        WriteMessage(logEvent, output);
        output.Write('\n');
        if (logEvent.Exception is not null)
        {
            output.Write(logEvent.Exception);
            output.Write('\n');
        }
    }

    internal static void WriteMessage(LogEvent logEvent, TextWriter output)
    {
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            switch (token)
            {
                case TextToken text:
                    output.Write(text.Text);
                    break;
                case PropertyToken property when logEvent.Properties.TryGetValue(property.PropertyName, out var value):
                    if (value is ScalarValue { Value: string raw })
                    {
                        output.Write(raw);
                    }
                    else
                    {
                        value.Render(output, property.Format);
                    }
                    break;
                case PropertyToken property:
                    output.Write(property.ToString());
                    break;
            }
        }
    }
}
