/** The Base64 data of a message's CORPSMAIL_PS (the producer's mail body to professionals). */
export const mailBodyData = (message: string): string => /CORPSMAIL_PS[^\r]*\^Base64\^([A-Za-z0-9+/=]*)/.exec(message)![1]!;

/** The message with its CORPSMAIL_PS cut short as the ANS examples have it: padding and the last characters gone. */
export const withCutMailBody = (message: string): string => message.replace(mailBodyData(message), mailBodyData(message).slice(0, -3));
