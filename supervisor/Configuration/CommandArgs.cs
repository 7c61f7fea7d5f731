using System.Text;

namespace Supervisor.Configuration;

/// <summary>
/// Splits <c>SUPERVISOR_CMD_ARGS</c> into arguments the way a POSIX shell would (as Gunicorn splits
/// <c>GUNICORN_CMD_ARGS</c> with shlex): whitespace separates, single quotes keep everything, double quotes
/// keep everything but backslash escapes of <c>"</c> <c>\</c> <c>$</c> <c>`</c>, and a backslash outside quotes
/// escapes the next character. Nothing is expanded.
/// </summary>
internal static class CommandArgs
{
    public static IReadOnlyList<string> Split(string text)
    {
        var arguments = new List<string>();
        var current = new StringBuilder();
        var inArgument = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case ' ' or '\t' or '\n' or '\r':
                    if (inArgument)
                    {
                        arguments.Add(current.ToString());
                        current.Clear();
                        inArgument = false;
                    }
                    break;
                case '\'':
                    inArgument = true;
                    var closeSingle = text.IndexOf('\'', i + 1);
                    if (closeSingle < 0)
                    {
                        throw new SettingValueException($"has an unterminated ' at position {i}");
                    }
                    current.Append(text, i + 1, closeSingle - i - 1);
                    i = closeSingle;
                    break;
                case '"':
                    inArgument = true;
                    i = ReadDoubleQuoted(text, i, current);
                    break;
                case '\\' when i + 1 < text.Length:
                    inArgument = true;
                    current.Append(text[++i]);
                    break;
                default:
                    inArgument = true;
                    current.Append(c);
                    break;
            }
        }
        if (inArgument)
        {
            arguments.Add(current.ToString());
        }
        return arguments;
    }

    private static int ReadDoubleQuoted(string text, int open, StringBuilder current)
    {
        for (var i = open + 1; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '"')
            {
                return i;
            }
            if (c == '\\' && i + 1 < text.Length && text[i + 1] is '"' or '\\' or '$' or '`')
            {
                c = text[++i];
            }
            current.Append(c);
        }
        throw new SettingValueException($"has an unterminated \" at position {open}");
    }
}
